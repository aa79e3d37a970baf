# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_netctl_global_optspecs
    string join \n H/host= json h/help V/version
end

function __fish_netctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_netctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_netctl_using_subcommand
    set -l cmd (__fish_netctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c netctl -n "__fish_netctl_needs_command" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_needs_command" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_needs_command" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_needs_command" -s V -l version -d 'Print version'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "network" -d 'Manage networks'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "sandbox" -d 'Manage sandboxes (network namespaces with their endpoints)'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "endpoint" -d 'Inspect endpoints'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "version" -d 'Show client and daemon versions'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "system" -d 'Daemon-wide operations'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "run" -d 'Run a command in a new container (netd\'s bundled runtime)'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "ps" -d 'List containers'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "stop" -d 'Stop containers (SIGTERM, then SIGKILL after the timeout)'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "rm" -d 'Remove containers'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "logs" -d 'Print a detached container\'s output'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "exec" -d 'Run a command inside a running container (all its namespaces)'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "inspect" -d 'Show containers in detail'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "rootfs" -d 'Build root filesystems for containers'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "explain" -d 'Explain why: a refused `network rm`, who holds a port, what overlaps a subnet'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "doctor" -d 'Check this machine for what netd needs, and how to fix what is missing'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c netctl -n "__fish_netctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "create" -d 'Create a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "ls" -d 'List networks'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "inspect" -d 'Show networks in detail'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "rm" -d 'Remove networks'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "connect" -d 'Connect a sandbox to a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "disconnect" -d 'Disconnect a sandbox from a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and not __fish_seen_subcommand_from create ls inspect rm connect disconnect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -s d -l driver -d 'Driver: bridge (default), host, null' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l subnet -d 'Subnet in CIDR form (repeatable: one per IPv4/IPv6 subnet)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l gateway -d 'Gateway of the subnet that contains it' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l ip-range -d 'Allocate container addresses from this sub-range' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l aux-address -d 'Reserved address `name=IP` (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -s o -l opt -d 'Driver option `key=value` (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l label -d 'Label `key=value` (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l ipv6 -d 'Enable IPv6'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l internal -d 'No external connectivity'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from ls" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from inspect" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from inspect" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from rm" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from rm" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -l alias -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -l ip -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -l ip6 -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from connect" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from disconnect" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from disconnect" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from disconnect" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List networks'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Show networks in detail'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove networks'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "connect" -d 'Connect a sandbox to a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "disconnect" -d 'Disconnect a sandbox from a network'
complete -c netctl -n "__fish_netctl_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -f -a "create" -d 'Create a sandbox (a network namespace) and connect it to networks'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -f -a "ls" -d 'List sandboxes'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -f -a "inspect" -d 'Show sandboxes with their interfaces, addresses and routes'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -f -a "rm" -d 'Remove sandboxes (and their endpoints and namespaces)'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and not __fish_seen_subcommand_from create ls inspect rm help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l name -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l netns -d 'Adopt an existing network namespace instead of creating one' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l network -d 'Network to connect (repeatable, in order; the first gives the default route)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l hostname -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l dns -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -s p -l publish -d 'Publish a port on the first network: `[HOSTIP:]HOSTPORT[-END]:PORT[/proto]`' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l network-alias -d 'Network alias on the first network (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from ls" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from inspect" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from inspect" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from rm" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from rm" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a sandbox (a network namespace) and connect it to networks'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List sandboxes'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Show sandboxes with their interfaces, addresses and routes'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove sandboxes (and their endpoints and namespaces)'
complete -c netctl -n "__fish_netctl_using_subcommand sandbox; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and not __fish_seen_subcommand_from ls help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and not __fish_seen_subcommand_from ls help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and not __fish_seen_subcommand_from ls help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and not __fish_seen_subcommand_from ls help" -f -a "ls" -d 'List endpoints'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and not __fish_seen_subcommand_from ls help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and __fish_seen_subcommand_from ls" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and __fish_seen_subcommand_from ls" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List endpoints'
complete -c netctl -n "__fish_netctl_using_subcommand endpoint; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand version" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand version" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand version" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand system; and not __fish_seen_subcommand_from reconcile help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand system; and not __fish_seen_subcommand_from reconcile help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand system; and not __fish_seen_subcommand_from reconcile help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand system; and not __fish_seen_subcommand_from reconcile help" -f -a "reconcile" -d 'Compare the store with the kernel and repair both ways'
complete -c netctl -n "__fish_netctl_using_subcommand system; and not __fish_seen_subcommand_from reconcile help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand system; and __fish_seen_subcommand_from reconcile" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand system; and __fish_seen_subcommand_from reconcile" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand system; and __fish_seen_subcommand_from reconcile" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand system; and __fish_seen_subcommand_from help" -f -a "reconcile" -d 'Compare the store with the kernel and repair both ways'
complete -c netctl -n "__fish_netctl_using_subcommand system; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand run" -l name -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -l network -d 'Network to connect (repeatable; the first gives the default route). Default: bridge' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -l network-alias -d 'Network alias on the first network (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -l ip -d 'IPv4 address on the first network' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -s p -l publish -d 'Publish a port: `[HOSTIP:]HOSTPORT[-END]:PORT[/tcp|udp|sctp]` (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -l dns -d 'DNS server for names netd\'s resolver does not know (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -l hostname -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -s e -l env -d 'Environment variable `KEY=VALUE` (repeatable)' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -s w -l workdir -d 'Working directory inside the container' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand run" -s d -l detach -d 'Run in the background; output goes to the container\'s log'
complete -c netctl -n "__fish_netctl_using_subcommand run" -l rm -d 'Remove the container when it exits'
complete -c netctl -n "__fish_netctl_using_subcommand run" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand run" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand ps" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand ps" -s a -l all -d 'Also exited containers'
complete -c netctl -n "__fish_netctl_using_subcommand ps" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand ps" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand stop" -s t -l time -r
complete -c netctl -n "__fish_netctl_using_subcommand stop" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand stop" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand stop" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand rm" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand rm" -s f -l force
complete -c netctl -n "__fish_netctl_using_subcommand rm" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand rm" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand logs" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand logs" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand logs" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand exec" -s e -l env -r
complete -c netctl -n "__fish_netctl_using_subcommand exec" -s w -l workdir -r
complete -c netctl -n "__fish_netctl_using_subcommand exec" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand exec" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand exec" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand inspect" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand inspect" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and not __fish_seen_subcommand_from busybox help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and not __fish_seen_subcommand_from busybox help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and not __fish_seen_subcommand_from busybox help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and not __fish_seen_subcommand_from busybox help" -f -a "busybox" -d 'Build a root filesystem from the host\'s static busybox (busybox-static)'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and not __fish_seen_subcommand_from busybox help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and __fish_seen_subcommand_from busybox" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and __fish_seen_subcommand_from busybox" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and __fish_seen_subcommand_from busybox" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and __fish_seen_subcommand_from help" -f -a "busybox" -d 'Build a root filesystem from the host\'s static busybox (busybox-static)'
complete -c netctl -n "__fish_netctl_using_subcommand rootfs; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -f -a "network" -d 'Why `netctl network rm NETWORK` is refused (endpoints, sandboxes, containers)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -f -a "port" -d 'Who holds a host port: `[IP:]PORT[/tcp|udp]` (netd publisher or host process)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -f -a "subnet" -d 'Which netd networks, pools or host routes overlap a subnet (CIDR)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and not __fish_seen_subcommand_from network port subnet help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from network" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from network" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from network" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from port" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from port" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from port" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from subnet" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from subnet" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from subnet" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from help" -f -a "network" -d 'Why `netctl network rm NETWORK` is refused (endpoints, sandboxes, containers)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from help" -f -a "port" -d 'Who holds a host port: `[IP:]PORT[/tcp|udp]` (netd publisher or host process)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from help" -f -a "subnet" -d 'Which netd networks, pools or host routes overlap a subnet (CIDR)'
complete -c netctl -n "__fish_netctl_using_subcommand explain; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand doctor" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand doctor" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand completion" -s H -l host -d 'netd\'s socket (`unix:///path` or a path)' -r
complete -c netctl -n "__fish_netctl_using_subcommand completion" -l json -d 'Print JSON instead of tables'
complete -c netctl -n "__fish_netctl_using_subcommand completion" -s h -l help -d 'Print help'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "network" -d 'Manage networks'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "sandbox" -d 'Manage sandboxes (network namespaces with their endpoints)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "endpoint" -d 'Inspect endpoints'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "version" -d 'Show client and daemon versions'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "system" -d 'Daemon-wide operations'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "run" -d 'Run a command in a new container (netd\'s bundled runtime)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "ps" -d 'List containers'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "stop" -d 'Stop containers (SIGTERM, then SIGKILL after the timeout)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "rm" -d 'Remove containers'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "logs" -d 'Print a detached container\'s output'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "exec" -d 'Run a command inside a running container (all its namespaces)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "inspect" -d 'Show containers in detail'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "rootfs" -d 'Build root filesystems for containers'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "explain" -d 'Explain why: a refused `network rm`, who holds a port, what overlaps a subnet'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "doctor" -d 'Check this machine for what netd needs, and how to fix what is missing'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "completion" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and not __fish_seen_subcommand_from network sandbox endpoint version system run ps stop rm logs exec inspect rootfs explain doctor completion help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "create" -d 'Create a network'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "ls" -d 'List networks'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "inspect" -d 'Show networks in detail'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "rm" -d 'Remove networks'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "connect" -d 'Connect a sandbox to a network'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "disconnect" -d 'Disconnect a sandbox from a network'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "create" -d 'Create a sandbox (a network namespace) and connect it to networks'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "ls" -d 'List sandboxes'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "inspect" -d 'Show sandboxes with their interfaces, addresses and routes'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from sandbox" -f -a "rm" -d 'Remove sandboxes (and their endpoints and namespaces)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from endpoint" -f -a "ls" -d 'List endpoints'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from system" -f -a "reconcile" -d 'Compare the store with the kernel and repair both ways'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from rootfs" -f -a "busybox" -d 'Build a root filesystem from the host\'s static busybox (busybox-static)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from explain" -f -a "network" -d 'Why `netctl network rm NETWORK` is refused (endpoints, sandboxes, containers)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from explain" -f -a "port" -d 'Who holds a host port: `[IP:]PORT[/tcp|udp]` (netd publisher or host process)'
complete -c netctl -n "__fish_netctl_using_subcommand help; and __fish_seen_subcommand_from explain" -f -a "subnet" -d 'Which netd networks, pools or host routes overlap a subnet (CIDR)'
