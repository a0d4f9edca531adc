#!/bin/bash
# run-v2-vm.sh - run one command in a throw-away QEMU VM whose only cgroup hierarchy is
# cgroup2 (every controller), with this machine's root filesystem visible read-only.
#
#   guest /              overlay: this host's / (read-only, over virtiofs) + tmpfs (discarded)
#   guest DIR            this host's DIR, writable, for each -r DIR (same path)
#   guest /sys/fs/cgroup cgroup2 only (-1: cgroup v1 hierarchies only; -H: v1 + cgroup2)
#   guest /dev/vda       a 1 GiB virtio disk that reads zeroes and drops writes (io.max tests)
#
# The command's stdout/stderr come back on ours (two serial ports) and we exit with its status.
# Our own codes: 124 timeout, 125 VM or setup failure. Needs root, qemu-system-x86,
# a Debian kernel in /boot with its modules (linux-image-cloud-amd64), busybox-static, cpio, kmod.
#
# -s boots systemd as PID 1 and runs the command as a service with Delegate=yes (for the
# systemd cgroup driver; slower: about 15 s to boot); by default PID 1 is a busybox shell.
# -1 mounts the cgroup v1 controllers (each apart, cpu,cpuacct together, and a named
# name=systemd hierarchy, as legacy hosts have them) instead of cgroup2; -H does that and mounts
# an empty cgroup2 hierarchy at /sys/fs/cgroup/unified too, as hybrid hosts have it. Not with -s.
#
# usage: run-v2-vm.sh [-r DIR]... [-C DIR] [-e VAR=VAL]... [-m MB] [-c CPUS] [-t SECS] [-s|-1|-H] [-v] -- CMD...
set -euo pipefail

me=${0##*/}
fail() { echo "$me: $*" >&2; exit 125; }

mem=1024 cpus=2 timeout=600 verbose=0 systemd=0 v1=0 hybrid=0 cwd=$PWD
shares=() envs=()
while getopts ':r:C:e:m:c:t:s1Hv' opt; do
  case $opt in
    r) shares+=("$(cd "$OPTARG" && pwd -P)") ;;
    C) cwd=$OPTARG ;;
    e) envs+=("$OPTARG") ;;
    m) mem=$OPTARG ;;
    c) cpus=$OPTARG ;;
    t) timeout=$OPTARG ;;
    s) systemd=1 ;;
    1) v1=1 ;;
    H) v1=1 hybrid=1 ;;
    v) verbose=1 ;;
    *) fail "usage: $me [-r DIR]... [-C DIR] [-e VAR=VAL]... [-m MB] [-c N] [-t SECS] [-v] -- CMD..." ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -gt 0 ]] || fail "no command"
[[ $systemd == 1 && $v1 == 1 ]] && fail "-s and -1/-H do not go together"
[[ $(id -u) == 0 ]] || fail "must run as root"

qemu=$(command -v qemu-system-x86_64) || fail "qemu-system-x86_64 is not installed"
virtiofsd=/usr/lib/qemu/virtiofsd
[[ -x $virtiofsd ]] || fail "$virtiofsd is not installed (qemu-system-common)"
busybox=/bin/busybox
[[ -x $busybox ]] || fail "busybox is not installed (busybox-static)"
kernel=${PYRUNC_VM_KERNEL:-$(ls -1 /boot/vmlinuz-*-cloud-amd64 /boot/vmlinuz-* 2>/dev/null | head -n1)}
[[ -r $kernel ]] || fail "no kernel in /boot (linux-image-cloud-amd64)"
kver=${kernel##*/vmlinuz-}
[[ -d /lib/modules/$kver ]] || fail "no /lib/modules/$kver"

work=$(mktemp -d /tmp/pyrunc-v2vm.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # virtiofsd keeps a pid file per socket in /run/virtiofsd, named after the socket's path
  rm -f "/run/virtiofsd/${work//\//.}".*.sock.pid
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- initramfs: busybox, the modules for virtio + virtiofs + overlay, the stage scripts
ir=$work/initramfs
mkdir -p "$ir"/{bin,dev,proc,sys,lower,rw,newroot,vm/mods}
cp "$busybox" "$ir/bin/busybox"
: > "$ir/vm/modules"
for m in virtio_pci virtio_blk virtiofs overlay; do
  modprobe -S "$kver" --show-depends "$m" 2>/dev/null | while read -r kind path _; do
    [[ $kind == insmod ]] || continue
    b=${path##*/}
    [[ -e $ir/vm/mods/${b%%.ko*}.ko ]] && continue
    case $b in
      *.ko.xz) xz -dc "$path" > "$ir/vm/mods/${b%.xz}" ;;
      *.ko.zst) zstd -qdc "$path" > "$ir/vm/mods/${b%.zst}" ;;
      *) cp "$path" "$ir/vm/mods/$b" ;;
    esac
    echo "/vm/mods/${b%%.ko*}.ko" >> "$ir/vm/modules"
  done
done
i=0
for d in "${shares[@]}"; do echo "rw$i $d" >> "$ir/vm/shares"; i=$((i + 1)); done
touch "$ir/vm/shares"
{
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PYRUNC_VM=1'
  for kv in "${envs[@]}"; do printf 'export %q\n' "$kv"; done
  printf 'cd %q || exit 125\n' "$cwd"
  printf 'exec'; printf ' %q' "$@"; printf '\n'
} > "$ir/vm/cmd"

cat > "$ir/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
die() { echo "VM-SETUP-ERROR: $*" > /dev/ttyS0; echo "VM-EXIT=125" > /dev/ttyS0; poweroff -f; }
while read -r ko; do insmod "$ko" || die "insmod $ko"; done < /vm/modules
mount -t virtiofs -o ro hostroot /lower || die "virtiofs root"
mount -t tmpfs tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || die overlay
while read -r tag path; do
  mkdir -p "/newroot$path" && mount -t virtiofs "$tag" "/newroot$path" || die "share $path"
done < /vm/shares
rm -rf /newroot/.vm && cp -a /vm /newroot/.vm && cp /bin/busybox /newroot/.vm/busybox
rm -f /newroot/.dockerenv /newroot/run/.containerenv
mode=plain
grep -q pyrunc.systemd /proc/cmdline && mode=systemd
for m in dev proc sys; do mount --move /$m /newroot/$m; done
if [ $mode = systemd ]; then
  cp /vm/pyrunc-vm.service /vm/pyrunc-vm.target /newroot/etc/systemd/system/
  echo "d /tmp 1777 root root -" > /newroot/etc/tmpfiles.d/tmp.conf
  exec switch_root /newroot /lib/systemd/systemd
fi
exec switch_root /newroot /.vm/busybox sh /.vm/stage2
EOF
chmod 755 "$ir/init"

cat > "$ir/vm/stage2" <<'EOF'
bb=/.vm/busybox
if $bb grep -q pyrunc.cgroup1 /proc/cmdline; then
  $bb mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
  for c in cpuset cpu,cpuacct memory devices freezer blkio pids perf_event net_cls,net_prio hugetlb; do
    $bb mkdir /sys/fs/cgroup/$c && $bb mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
  done
  $bb ln -s cpu,cpuacct /sys/fs/cgroup/cpu && $bb ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
  $bb ln -s net_cls,net_prio /sys/fs/cgroup/net_cls && $bb ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
  $bb mkdir /sys/fs/cgroup/systemd && $bb mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
  if $bb grep -q pyrunc.hybrid /proc/cmdline; then
    $bb mkdir /sys/fs/cgroup/unified && $bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup/unified
  fi
else
  $bb mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
fi
# /run and /tmp live in the overlay's in-memory upper layer: no tmpfs over them, which would hide
# a shared directory below them (a checkout under /tmp).
$bb mkdir -p /run /tmp
$bb chmod 755 /run
$bb chmod 1777 /tmp
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs tmpfs /dev/shm
$bb ln -sf /proc/self/fd /dev/fd
$bb hostname v2vm
$bb sh /.vm/runcmd
$bb sync
$bb poweroff -f
EOF

# the command, with stdout/stderr on the two extra serial ports and its status on the console
cat > "$ir/vm/runcmd" <<'EOF'
bb=/.vm/busybox
$bb stty -F /dev/ttyS1 raw -echo
$bb stty -F /dev/ttyS2 raw -echo
/bin/bash /.vm/cmd </dev/null >/dev/ttyS1 2>/dev/ttyS2
echo "VM-EXIT=$?" > /dev/ttyS0
EOF

# systemd mode: the command is a oneshot service that may create delegated cgroups
cat > "$ir/vm/pyrunc-vm.service" <<'EOF'
[Unit]
Description=pyrunc VM command
After=basic.target
Requires=basic.target
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
Delegate=yes
TimeoutStartSec=infinity
StandardInput=null
StandardOutput=journal
ExecStart=/.vm/busybox sh /.vm/runcmd
EOF
cat > "$ir/vm/pyrunc-vm.target" <<'EOF'
[Unit]
Description=pyrunc VM
Requires=basic.target pyrunc-vm.service
After=basic.target pyrunc-vm.service
AllowIsolate=yes
EOF

(cd "$ir" && find . -print0 | cpio --null -o -H newc --owner 0:0 --quiet) > "$work/initramfs.cpio"

# ---- virtiofs daemons: the host root as a read-only non-recursive bind (in a private mount
# namespace, never visible on the host), and each -r share
mkdir -p "$work/root"
unshare -m --propagation private -- /bin/sh -c \
  'mount --bind / "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"' sh "$work/root" \
  "$virtiofsd" --socket-path="$work/root.sock" -o source="$work/root" -o cache=always \
  -o log_level=err >"$work/virtiofsd.log" 2>&1 &
pids+=($!)
fsdev=(-chardev "socket,id=root,path=$work/root.sock" -device "vhost-user-fs-pci,chardev=root,tag=hostroot")
i=0
for d in "${shares[@]}"; do
  "$virtiofsd" --socket-path="$work/rw$i.sock" -o source="$d" -o cache=none -o log_level=err \
    >>"$work/virtiofsd.log" 2>&1 &
  pids+=($!)
  fsdev+=(-chardev "socket,id=rw$i,path=$work/rw$i.sock" -device "vhost-user-fs-pci,chardev=rw$i,tag=rw$i")
  i=$((i + 1))
done
for s in "$work"/root.sock $(for j in $(seq 0 $((i - 1))); do echo "$work/rw$j.sock"; done); do
  for _ in $(seq 200); do [[ -S $s ]] && break; sleep 0.05; done
  [[ -S $s ]] || fail "virtiofsd did not start: $(cat "$work/virtiofsd.log")"
done

mkfifo "$work/out" "$work/err"
cat "$work/out" & pids+=($!)
cat "$work/err" >&2 & pids+=($!)

append=
[[ $v1 == 1 ]] && append="pyrunc.cgroup1"
[[ $hybrid == 1 ]] && append="$append pyrunc.hybrid"
if [[ $systemd == 1 ]]; then
  append="pyrunc.systemd systemd.unit=pyrunc-vm.target systemd.unified_cgroup_hierarchy=1"
  append="$append systemd.show_status=false systemd.firstboot=off fstab=no systemd.mask=apparmor.service"
fi
set +e
timeout -k 5 "$timeout" "$qemu" -nodefaults -no-user-config -display none -no-reboot \
  -accel tcg,thread=multi -cpu max -m "$mem" -smp "$cpus" \
  -object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -machine pc,memory-backend=mem \
  -chardev "file,id=con,path=$work/console" -serial chardev:con \
  -chardev "file,id=out,path=$work/out" -serial chardev:out \
  -chardev "file,id=err,path=$work/err" -serial chardev:err \
  "${fsdev[@]}" \
  -blockdev "driver=null-co,node-name=null,size=1073741824,read-zeroes=on" \
  -device virtio-blk-pci,drive=null \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 sysctl.kernel.hung_task_timeout_secs=60 mitigations=off $append" \
  </dev/null >"$work/qemu.log" 2>&1
qrc=$?
set -e
sleep 0.2
[[ $verbose == 1 ]] && tr -d '\r' < "$work/console" >&2
if [[ $qrc == 124 || $qrc == 137 ]]; then
  # the guest kernel's own complaints (hung tasks, lockups, stalls) say where it stood
  echo "$me: timed out after ${timeout}s; the console's last lines:" >&2
  tr -d '\r' < "$work/console" | tail -n 30 >&2
  exit 124
fi
status=$(tr -d '\r' < "$work/console" | grep -ao 'VM-EXIT=[0-9]*' | tail -n1 | cut -d= -f2)
if [[ -z $status ]]; then
  echo "$me: the VM did not report a status (qemu exit $qrc)" >&2
  cat "$work/qemu.log" >&2
  tr -d '\r' < "$work/console" | tail -n 30 >&2
  exit 125
fi
grep -a VM-SETUP-ERROR "$work/console" >&2 || true
exit "$status"
