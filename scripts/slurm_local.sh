#!/usr/bin/env bash
# scripts/slurm_local.sh {start|stop|status}
#
# A real, single-node SLURM on this machine, for testing profiles/slurm
# (tests/test_slurm.py). Debian 12 packages: slurmctld, slurmd, slurm-client, munge.
#
#   start   install the packages when missing (apt-get update first), create a munge key when
#           none exists, write /etc/slurm/slurm.conf and /etc/slurm/gres.conf (this host,
#           CPUs=nproc, 80% of MemTotal, one declared GPU), start munged, slurmctld, slurmd and
#           wait (bounded) until the node is idle. Running it again while up is harmless.
#   stop    kill the daemons this script started, by the PIDs it recorded, and wait for them.
#   status  print the daemons and the node state; exit 0 only when the node accepts jobs.
#
# Needs root (it installs packages and writes /etc/slurm: the plugin's job step strips
# SLURM_* variables, so SLURM_CONF pointing elsewhere would break srun inside jobs).
# Runtime state (spool, state, logs, pid files) lives in $SPECTBONE_SLURM_DIR
# (default /tmp/spectbone-slurm). Exit codes: 0 ok, 1 failure, 2 usage, 3 cannot install/run.
set -euo pipefail

STATE_DIR="${SPECTBONE_SLURM_DIR:-/tmp/spectbone-slurm}"
PID_DIR="$STATE_DIR/pids"          # our own record of daemon PIDs
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
GRES_CONF="$CONF_DIR/gres.conf"
IDLE_TIMEOUT="${SPECTBONE_SLURM_IDLE_TIMEOUT:-60}"   # seconds to wait for the node
HOST="$(hostname -s)"

log() { echo "slurm_local: $*" >&2; }
die() { local rc="$1"; shift; log "ERROR: $*"; exit "$rc"; }

need_root() {
    [[ "$(id -u)" == 0 ]] || die 3 "must run as root (installs packages, writes $CONF_DIR, runs daemons)"
}

# ---------------------------------------------------------------- installation
have_binaries() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v sbatch >/dev/null && command -v sinfo >/dev/null &&
        command -v scontrol >/dev/null && command -v squeue >/dev/null &&
        { command -v munged >/dev/null || [[ -x /usr/sbin/munged ]]; }
}

install_packages() {
    have_binaries && return 0
    command -v apt-get >/dev/null || die 3 "SLURM is not installed and apt-get is not available: install slurmctld, slurmd, slurm-client and munge by hand"
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$STATE_DIR/apt.log" 2>&1 ||
        die 3 "apt-get update failed (no network/package mirror?); see $STATE_DIR/apt.log"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >>"$STATE_DIR/apt.log" 2>&1 ||
        die 3 "apt-get install slurmctld slurmd slurm-client munge failed; see $STATE_DIR/apt.log"
    have_binaries || die 3 "packages installed but SLURM/munge binaries are still missing"
}

ensure_munge_key() {
    local key=/etc/munge/munge.key
    if [[ ! -s "$key" ]]; then
        log "creating munge key $key"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$key" --force
        else
            dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$key"
    chmod 400 "$key"
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
}

# --------------------------------------------------------------- configuration
MARKER="# Written by scripts/slurm_local.sh"

# Never clobber a real cluster's configuration or fight its daemons.
guard_foreign_slurm() {
    [[ "${SPECTBONE_SLURM_FORCE:-0}" == 1 ]] && return 0
    if [[ -s "$CONF" ]] && ! grep -q "^$MARKER" "$CONF"; then
        die 3 "$CONF exists and was not written by this script (a real cluster?); refusing to overwrite it (set SPECTBONE_SLURM_FORCE=1 to override)"
    fi
    local name
    for name in slurmctld slurmd; do
        if ! pid_alive "$name" && pgrep -x "$name" >/dev/null 2>&1; then
            die 3 "a $name not started by this script is running; stop it first (or set SPECTBONE_SLURM_FORCE=1)"
        fi
    done
}

write_conf() {
    local cpus mem_total_kb real_mem tmp
    cpus="$(nproc)"
    mem_total_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    real_mem=$(( mem_total_kb * 8 / 10 / 1024 ))
    mkdir -p "$CONF_DIR" "$STATE_DIR"/{state,spool,run,log} "$PID_DIR"
    tmp="$(mktemp)"
    cat >"$tmp" <<EOF
$MARKER: a single-node SLURM for testing profiles/slurm.
ClusterName=spectbone
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Finished jobs stay visible to squeue for 10 min: the plugin's squeue status
# checks need MinJobAge >= 3 x slurm-init-seconds-before-status-checks.
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
Waittime=0
StateSaveLocation=${STATE_DIR}/state
SlurmdSpoolDir=${STATE_DIR}/spool
SlurmctldPidFile=${STATE_DIR}/run/slurmctld.pid
SlurmdPidFile=${STATE_DIR}/run/slurmd.pid
SlurmctldLogFile=${STATE_DIR}/log/slurmctld.log
SlurmdLogFile=${STATE_DIR}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mem} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# profiles/slurm routes every gpu=1 rule to a partition named gpu (its set-resources anchor).
PartitionName=gpu Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
    if ! cmp -s "$tmp" "$CONF"; then
        CONF_CHANGED=1
        install -m 644 "$tmp" "$CONF"
    fi
    cat >"$tmp" <<EOF
$MARKER: one declared GPU. File= is required (without it the
# node drains); /dev/null stands in for a device node. Jobs with --gpus=1 run one at a
# time and see CUDA_VISIBLE_DEVICES=0.
AutoDetect=off
NodeName=${HOST} Name=gpu File=/dev/null
EOF
    if ! cmp -s "$tmp" "$GRES_CONF"; then
        CONF_CHANGED=1
        install -m 644 "$tmp" "$GRES_CONF"
    fi
    rm -f "$tmp"
}

# ------------------------------------------------------------------- processes
# pid_alive NAME: the PID we recorded for NAME is a live process of that program.
pid_alive() {
    local name="$1" pid
    [[ -s "$PID_DIR/$name.pid" ]] || return 1
    pid="$(cat "$PID_DIR/$name.pid")"
    [[ -d "/proc/$pid" ]] && grep -qx "$name" "/proc/$pid/comm" 2>/dev/null
}

# record_pid NAME PIDFILE: wait (bounded) for the daemon's own pid file and copy it.
record_pid() {
    local name="$1" pidfile="$2" i
    for i in $(seq 1 100); do
        if [[ -s "$pidfile" ]]; then
            cp "$pidfile" "$PID_DIR/$name.pid"
            pid_alive "$name" && return 0
        fi
        sleep 0.1
    done
    return 1
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
    if pid_alive munged; then return 0; fi
    if munge_works; then
        log "a munged not started by this script is already running; using it"
        return 0
    fi
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged ||
        die 1 "munged failed to start (see /var/log/munge/munged.log)"
    record_pid munged /run/munge/munged.pid || die 1 "munged did not write /run/munge/munged.pid"
    local i
    for i in $(seq 1 50); do munge_works && return 0; sleep 0.1; done
    die 1 "munged is running but munge -n | unmunge fails"
}

start_slurmctld() {
    if pid_alive slurmctld; then return 0; fi
    # -c: forget jobs from an earlier session of this test cluster.
    slurmctld -c || die 1 "slurmctld failed to start; see $STATE_DIR/log/slurmctld.log"
    record_pid slurmctld "$STATE_DIR/run/slurmctld.pid" ||
        die 1 "slurmctld exited early; see $STATE_DIR/log/slurmctld.log"
}

start_slurmd() {
    if pid_alive slurmd; then return 0; fi
    slurmd || die 1 "slurmd failed to start; see $STATE_DIR/log/slurmd.log"
    record_pid slurmd "$STATE_DIR/run/slurmd.pid" ||
        die 1 "slurmd exited early; see $STATE_DIR/log/slurmd.log"
}

node_state() { sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n1 || true; }

wait_for_node() {
    local deadline=$(( SECONDS + IDLE_TIMEOUT )) state resumed=0
    while (( SECONDS < deadline )); do
        state="$(node_state)"
        case "$state" in
            idle|mix|alloc) log "node $HOST is $state"; return 0 ;;
            drain*|down*|drng*|fail*)
                if (( ! resumed )); then
                    log "node $HOST is $state; resuming it"
                    scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
                    resumed=1
                fi ;;
        esac
        sleep 0.2
    done
    scontrol show node "$HOST" >&2 2>/dev/null || true
    die 1 "node $HOST not idle after ${IDLE_TIMEOUT}s (state '${state:-?}'); see $STATE_DIR/log/"
}

stop_one() {
    local name="$1" pid i
    [[ -s "$PID_DIR/$name.pid" ]] || return 0
    pid="$(cat "$PID_DIR/$name.pid")"
    if pid_alive "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 150); do [[ -d "/proc/$pid" ]] || break; sleep 0.1; done
        if [[ -d "/proc/$pid" ]]; then
            log "$name ($pid) ignored SIGTERM for 15 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do [[ -d "/proc/$pid" ]] || break; sleep 0.1; done
        fi
        log "stopped $name ($pid)"
    fi
    rm -f "$PID_DIR/$name.pid"
}

# -------------------------------------------------------------------- commands
cmd_start() {
    need_root
    mkdir -p "$STATE_DIR" "$PID_DIR"
    install_packages
    guard_foreign_slurm
    ensure_munge_key
    CONF_CHANGED=0
    write_conf
    if (( CONF_CHANGED )) && { pid_alive slurmctld || pid_alive slurmd; }; then
        log "configuration changed: restarting slurmctld and slurmd"
        stop_one slurmd
        stop_one slurmctld
    fi
    start_munged
    start_slurmctld
    start_slurmd
    wait_for_node
}

cmd_stop() {
    stop_one slurmd
    stop_one slurmctld
    stop_one munged
}

cmd_status() {
    local name ok=0 state
    for name in munged slurmctld slurmd; do
        if pid_alive "$name"; then
            echo "$name: running (pid $(cat "$PID_DIR/$name.pid"))"
        else
            echo "$name: not running (per $PID_DIR)"
            [[ "$name" == munged ]] && munge_works && echo "  (a munged started elsewhere answers)" && continue
            ok=1
        fi
    done
    if command -v sinfo >/dev/null; then
        state="$(node_state)"
        echo "node $HOST: ${state:-unreachable}"
        case "$state" in idle|mix|alloc) ;; *) ok=1 ;; esac
    else
        echo "sinfo: not installed"
        ok=1
    fi
    return "$ok"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
