"""The rules and links of the current network namespace, to compare before and after."""
import re
import subprocess


def host_state():
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    rules = re.sub(r"\[\d+:\d+\]", "", "\n".join(
        line for line in rules.splitlines() if not line.startswith("#")))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return rules, sorted(line.split("\\")[0] for line in links.splitlines())


def ns_state():
    """(rules and user chains of iptables-save, sorted link names) of the current namespace:
    what a test compares before and after. Builtin chains are left out: iptables-nft makes a
    table's builtin chains when the first user chain is added and never removes them."""
    rules, links = host_state()
    kept = [line for line in rules.splitlines()
            if line.startswith("-") or (line.startswith(":") and line.split()[1] == "-")]
    return kept, sorted(line.split(":")[1].strip().split("@")[0] for line in links)
