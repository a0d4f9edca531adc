# bash completion for pydocker: commands, subcommands, flags (read from the command's own
# --help), and the names of containers, images, networks and volumes (asked of the daemon).

_pydocker_names() {
    case "$1" in
        container) pydocker ps -a --format '{{.Names}}' 2>/dev/null ;;
        running) pydocker ps --format '{{.Names}}' 2>/dev/null ;;
        image) pydocker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>' ;;
        network) pydocker network ls --format '{{.Name}}' 2>/dev/null ;;
        volume) pydocker volume ls -q 2>/dev/null ;;
    esac
}

_pydocker_flags() {
    pydocker "$@" --help 2>/dev/null | sed -n 's/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z0-9-]*\).*/\2/p'
}

_pydocker() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local top="run exec ps pull push images login logout version info container context image
        network system volume attach commit cp create diff events export history import
        inspect kill load logs pause port rename restart rm rmi save start stats stop tag top
        unpause update wait"
    local words=() i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case "$w" in
            -H|--host|-c|--context|--config|-l|--log-level) ((i++)) ;;
            -*) ;;
            *) words+=("$w") ;;
        esac
    done
    local cmd=${words[0]:-} sub=${words[1]:-}
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$top" -- "$cur"))
        return
    fi
    case "$cmd" in
        container|context|image|network|system|volume)
            if [ -z "$sub" ]; then
                local subs
                subs=$(pydocker "$cmd" --help 2>/dev/null | sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p')
                COMPREPLY=($(compgen -W "$subs" -- "$cur"))
                return
            fi
            ;;
        *) sub="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$(_pydocker_flags $cmd $sub)" -- "$cur"))
        return
    fi
    local kind
    case "$cmd:$sub" in
        run:*|create:*|pull:*|push:*|rmi:*|tag:*|save:*|history:*|image:*|container:run|container:create)
            kind=image ;;
        network:*) kind=network ;;
        volume:*) kind=volume ;;
        exec:*|stop:*|kill:*|pause:*|top:*|attach:*|stats:*|container:exec|container:stop|container:kill)
            kind=running ;;
        *) kind=container ;;
    esac
    COMPREPLY=($(compgen -W "$(_pydocker_names $kind)" -- "$cur"))
}

complete -F _pydocker pydocker
