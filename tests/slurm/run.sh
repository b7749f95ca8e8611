#!/usr/bin/env bash
# A real Slurm run of the README's sharded generation, on a one-node cluster on this machine:
#   1. installs slurm-wlm and munge from Debian when they are missing (needs root or sudo);
#   2. starts munged, slurmctld and slurmd with a private configuration under a scratch folder;
#   3. submits the README's array job (8 shards of a small Darcy config) and a merge job;
#   4. cancels one task mid-run and resubmits it, which resumes from its checkpoint;
#   5. checks the merged file equals a single-process run bit for bit (h5py in a venv);
#   6. stops the daemons it started.
# Run from anywhere: tests/slurm/run.sh   (3–4 minutes once the packages are installed)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    echo "== installing slurm-wlm and munge"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
PATH=$PATH:/usr/sbin

echo "== building pdekit"
(cd "$ROOT" && cargo build --release --quiet)
PDEKIT=$ROOT/target/release/pdekit

T=$(mktemp -d /tmp/pdekit-slurm.XXXXXX)
chmod 755 "$T"
PIDS=()
cleanup() {
    echo "== stopping the daemons"
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    echo "(logs and data kept in $T)"
}
trap cleanup EXIT

# munge with its own key and socket, so the machine's munged (if any) is left alone.
mkdir -p "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$T/munge"; chmod 400 "$T/munge/munge.key"
SOCKET=$T/munge/munge.socket
$SUDO munged --force --key-file="$T/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed"
sleep 0.5
PIDS+=("$(cat "$T/munge/munged.pid")")

HOST=$(hostname -s)
USER_NAME=$(id -un)
mkdir -p "$T/state" "$T/spool" "$T/work/logs"
export SLURM_CONF=$T/slurm.conf
cat > "$SLURM_CONF" <<CONF
ClusterName=pdekit-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$USER_NAME
AuthType=auth/munge
AuthInfo=socket=$SOCKET
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

echo "== starting slurmctld and slurmd"
$SUDO env SLURM_CONF="$SLURM_CONF" slurmctld -i
$SUDO env SLURM_CONF="$SLURM_CONF" slurmd
for _ in $(seq 50); do
    [ -s "$T/slurmctld.pid" ] && [ -s "$T/slurmd.pid" ] && break
    sleep 0.2
done
PIDS+=("$(cat "$T/slurmctld.pid")" "$(cat "$T/slurmd.pid")")
for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -qE '^idle' && break
    sleep 0.3
done
sinfo

# A small Darcy dataset: 8 shards of 24 samples at 256² (a few seconds each), checkpointed every 2.
cd "$T/work"
cat > darcy.toml <<CFG
[generate]
problem = "darcy"
output = "data/darcy.h5"
samples = 192
seed = 11
checkpoint_every = 2
[generate.darcy]
resolution = 256
CFG
sed 's#data/darcy.h5#data/single.h5#' darcy.toml > single.toml

cat > shard.sh <<JOB
#!/bin/bash
#SBATCH --job-name=darcy
#SBATCH --cpus-per-task=2
#SBATCH --output=logs/darcy-%A-%a.out
export RAYON_NUM_THREADS=\$SLURM_CPUS_PER_TASK
$PDEKIT generate darcy.toml --shard "\$SLURM_ARRAY_TASK_ID/8"
JOB
cat > merge.sh <<JOB
#!/bin/bash
#SBATCH --job-name=merge
#SBATCH --output=logs/merge-%j.out
$PDEKIT merge data/darcy.h5
JOB

state() { squeue -h -j "$1" -o %T 2>/dev/null | head -1; }
wait_for() { # job id: until it has left the queue
    while [ -n "$(squeue -h -j "$1" 2>/dev/null)" ]; do sleep 0.5; done
}

echo "== submitting the array job (8 shards) and its merge (afterok)"
ARRAY=$(sbatch --parsable --array=0-7 shard.sh)
echo "array job $ARRAY"

# Cancel task 5 once it has checkpointed samples, then resubmit it.
PARTIAL=data/darcy.shard-5-of-8.partial.h5
until [ "$(state "${ARRAY}_5")" = RUNNING ] && [ -f "$PARTIAL" ]; do sleep 0.2; done
sleep 1.5
echo "== cancelling task ${ARRAY}_5 mid-run"
scancel "${ARRAY}_5"
wait_for "${ARRAY}_5"
sleep 1
echo "task 5 log before the cancel:"; sed 's/^/    /' "logs/darcy-${ARRAY}-5.out" || true
RESUB=$(sbatch --parsable --array=5 shard.sh)
echo "resubmitted task 5 as job $RESUB"
MERGE=$(sbatch --parsable --dependency=afterok:"$RESUB" merge.sh)
wait_for "$ARRAY"; wait_for "$RESUB"; wait_for "$MERGE"
echo "task 5 log after the resubmission:"; sed 's/^/    /' "logs/darcy-${RESUB}-5.out"
grep -q "resuming" "logs/darcy-${RESUB}-5.out" || { echo "FAIL: the resubmitted task did not resume"; exit 1; }
echo "merge log:"; sed 's/^/    /' logs/merge-"$MERGE".out
[ -f data/darcy.h5 ] || { echo "FAIL: no merged file"; exit 1; }
for i in 0 1 2 3 4 6 7; do
    grep -q "generated" "logs/darcy-${ARRAY}-$i.out" || { echo "FAIL: task $i"; cat "logs/darcy-${ARRAY}-$i.out"; exit 1; }
done

# The afterok merge of a clean array job (a second dataset, no cancellation).
sed 's#data/darcy.h5#data/clean.h5#' darcy.toml > clean.toml
sed 's#darcy.toml#clean.toml#' shard.sh > clean.sh
sed 's#data/darcy.h5#data/clean.h5#' merge.sh > clean-merge.sh
CLEAN=$(sbatch --parsable --array=0-7 clean.sh)
CLEAN_MERGE=$(sbatch --parsable --dependency=afterok:"$CLEAN" clean-merge.sh)
wait_for "$CLEAN"; wait_for "$CLEAN_MERGE"
[ -f data/clean.h5 ] || { echo "FAIL: the afterok merge did not run"; cat logs/merge-"$CLEAN_MERGE".out; exit 1; }

echo "== single-process reference"
RAYON_NUM_THREADS=2 "$PDEKIT" generate single.toml --quiet

echo "== comparing (h5py in a venv)"
python3 -m venv "$T/venv"
"$T/venv/bin/pip" install -q h5py numpy
"$T/venv/bin/python" - data/single.h5 data/darcy.h5 data/clean.h5 <<'PY'
import sys, h5py, numpy as np
ref, *others = sys.argv[1:]
def arrays(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            # Wall times differ between runs; everything else must not.
            if isinstance(obj, h5py.Dataset) and name != "stats/seconds":
                out[name] = obj[()]
        f.visititems(visit)
    return out
a = arrays(ref)
for path in others:
    b = arrays(path)
    assert a.keys() == b.keys(), (path, sorted(a), sorted(b))
    for k in sorted(a):
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, (path, k)
        assert a[k].tobytes() == b[k].tobytes(), f"{path}: {k} differs"
    print(f"{path}: {len(a)} arrays equal to {ref} bit for bit ({a['outputs/solution'].shape[0]} samples)")
PY
echo "== PASS"
