#!/usr/bin/env bash
# A private one-node SLURM cluster for trying (and testing) the SLURM profile on one machine.
#
#   workflows/cluster/slurm.sh up      install what is missing, configure, start, wait for an idle node
#   workflows/cluster/slurm.sh down    stop the daemons this script started, remove its directory
#   workflows/cluster/slurm.sh env     print the line a shell needs to use it: eval "$(... env)"
#
# Everything lives in $SIMBAFLOW_SLURM_DIR (default ${TMPDIR:-/tmp}/simbaflow-slurm): slurm.conf, its own
# munge key and socket, state, spool, logs and pid files. The machine's own munge/slurm services and
# /etc/slurm are never used or touched; the ports ($SIMBAFLOW_SLURM_PORT and the next one, default
# 16817/16818) are not SLURM's defaults, so a system cluster can run beside it. Needs root (munged and
# slurmd run as root, as slurmd must); the packages come from Debian (slurm-wlm, munge).
set -euo pipefail

DIR=${SIMBAFLOW_SLURM_DIR:-${TMPDIR:-/tmp}/simbaflow-slurm}
PORT=${SIMBAFLOW_SLURM_PORT:-16817}
PARTITION=${SIMBAFLOW_SLURM_PARTITION:-simbaflow}
CONF=$DIR/slurm.conf
SUDO=""
# PATH without this cluster's client wrappers (see write_client_wrappers), plus sbin for the daemons.
SYSTEM_PATH=$(echo "$PATH" | tr ':' '\n' | grep -vxF "$DIR/bin" | paste -sd: -):/usr/sbin:/sbin
[ "$(id -u)" = 0 ] || SUDO=sudo

say() { echo "slurm-cluster: $*"; }
die() { echo "slurm-cluster: $*" >&2; exit 1; }

install_missing() {
    local missing=""
    for pkg in slurm-wlm munge; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    say "installing Debian packages:$missing"
    # Debian starts a package's services on installation; a temporary policy-rc.d (only when the
    # machine has none) keeps the system munge/slurm services stopped: this cluster runs its own.
    local policy=/usr/sbin/policy-rc.d ours=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        ours=1
    fi
    local code=0
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends $missing >/dev/null; } || code=$?
    [ -n "$ours" ] && $SUDO rm -f "$policy"
    [ "$code" = 0 ] || die "apt-get install$missing failed (exit $code)"
}

# pid from a pid file, if that process is alive and runs the expected program.
live_pid() {
    local file=$1 program=$2 pid
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    [ -d "/proc/$pid" ] || return 1
    # Debian's daemons are alternatives (slurmctld -> slurmctld-wlm): compare resolved paths.
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$(PATH=$SYSTEM_PATH command -v "$program")")" ] || return 1
    echo "$pid"
}

# The node's state ("idle", ...), empty while slurmctld does not answer.
node_state() {
    { SLURM_CONF=$CONF sinfo -h -N -p "$PARTITION" -o %T 2>/dev/null || true; } | head -n1
}

write_config() {
    local host node
    host=$(hostname -s)
    # slurmd measures the machine (CPUs, sockets, cores, threads, memory); its line becomes the node.
    node=$(slurmd -C | grep '^NodeName=' | sed -e 's/ UpTime=.*//')
    [ -n "$node" ] || die "slurmd -C did not describe this machine"
    cat >"$CONF" <<EOF
# Written by workflows/cluster/slurm.sh: a one-node cluster private to $DIR.
ClusterName=simbaflow
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups: processes tracked by parentage, no task binding (works inside containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
# Cores and memory are consumable, so the profile's cpus_per_task and mem_mb requests are honoured.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
# No accounting database: job states come from squeue, which keeps finished jobs for MinJobAge s.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
# A job past its time limit gets SIGTERM, then SIGKILL KillWait s later.
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# The client commands with this cluster's slurm.conf baked in: Snakemake's job step drops SLURM_CONF
# from the environment of the srun it starts inside each job, and nothing else tells srun where the
# private cluster is (it never reads /etc/slurm here). PATH is what jobs inherit.
write_client_wrappers() {
    mkdir -p "$DIR/bin"
    for cmd in sbatch srun squeue sinfo scancel scontrol sacct; do
        local real
        real=$(PATH=$SYSTEM_PATH command -v "$cmd") || die "$cmd not found after installing slurm-wlm"
        printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$CONF" "$real" >"$DIR/bin/$cmd"
        chmod 755 "$DIR/bin/$cmd"
    done
}

up() {
    if live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null \
        && [[ "$(node_state)" =~ ^(idle|mixed|allocated)$ ]]; then
        say "already up ($DIR)"
        environment
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "run as root: munged, slurmctld and slurmd of the private cluster run as root"
    install_missing
    for program in munged slurmctld slurmd sinfo; do
        PATH=$SYSTEM_PATH command -v "$program" >/dev/null || die "$program not found after installing slurm-wlm and munge"
    done
    export PATH=$SYSTEM_PATH
    mkdir -p "$DIR"/{munge,state,spool,log,run}
    chmod 700 "$DIR" "$DIR/munge"
    # Its own key: the cluster trusts no other munge.
    if [ ! -s "$DIR/munge/munge.key" ]; then
        head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
        chmod 400 "$DIR/munge/munge.key"
    fi
    write_config
    write_client_wrappers
    if ! live_pid "$DIR/run/munged.pid" munged >/dev/null; then
        # --force: the key and socket sit under a world-writable TMPDIR, which munged would refuse.
        munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
            --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
            --seed-file="$DIR/munge/munged.seed" || die "munged did not start; see $DIR/log/munged.log"
    fi
    live_pid "$DIR/run/slurmctld.pid" slurmctld >/dev/null \
        || slurmctld -f "$CONF" -i || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    live_pid "$DIR/run/slurmd.pid" slurmd >/dev/null \
        || slurmd -f "$CONF" || die "slurmd did not start; see $DIR/log/slurmd.log"
    local state=""
    for _ in $(seq 1 60); do
        state=$(node_state)
        [ "$state" = idle ] && break
        sleep 1
    done
    [ "$state" = idle ] || die "the node is '${state:-not listed}' after 60 s, not idle; see $DIR/log/"
    say "up: one node, partition $PARTITION ($(SLURM_CONF=$CONF sinfo -h -N -o '%c CPUs, %m MB'))"
    environment
}

down() {
    local stopped=""
    # Only the daemons whose pid files this script's directory holds, checked by program name.
    for daemon in slurmd slurmctld munged; do
        local pid
        if pid=$(live_pid "$DIR/run/$daemon.pid" "$daemon"); then
            kill "$pid"
            for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
            [ -d "/proc/$pid" ] && kill -9 "$pid"
            stopped="$stopped $daemon"
        fi
    done
    rm -rf "$DIR"
    say "down (stopped:${stopped:- nothing was running}; removed $DIR)"
}

# What a shell needs to use the cluster: its client commands first on PATH (status from squeue: no accounting).
environment() {
    echo "export PATH=$DIR/bin:\$PATH SIMBAFLOW_SLURM_STATUS=squeue"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) environment ;;
    *) die "usage: $0 up|down|env" ;;
esac
