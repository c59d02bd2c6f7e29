"""What a SLURM cluster can place: group jobs sized to its nodes, and jobs it never will cancelled at once.

Two faults make a Snakemake run on SLURM wait forever without a word. A group job (profiles/slurm
batches BM3D jobs three to an sbatch) asks for the sum of its members, which can exceed every node
(3 CPUs on a 2-CPU node); and any job whose request no node or partition can ever meet stays
PENDING (reason PartitionConfig, PartitionTimeLimit, PartitionNodeLimit, BadConstraints, or
ReqNodeNotAvail naming a node that does not exist) while Snakemake polls it as "queued".
Requests over a node's memory or GPUs, or for an unknown node, sbatch refuses itself, and the
executor plugin then fails the job at once.

`cluster_limits` reads what the nodes offer (`sinfo`); `group_caps` is what one group job may ask
so that it fits the smallest of the partitions' largest nodes (Snakemake then runs a group's
members partly in series); `hopeless` decides from one pending job's record (`scontrol show job`)
whether it can ever start and says why in words (rule, request, limit); `PendingGuard` polls
`squeue` from a thread of the Snakemake process and cancels such jobs (`scancel`), so the
plugin reports them failed within a poll interval instead of never. The workflow starts both in
its `onstart` handler on SLURM runs (workflow/rules/common.smk).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field

log = logging.getLogger("spectbone.util.slurm_fit")

# Pending reasons after which SLURM will never start the job as submitted.
NEVER_REASONS = ("PartitionConfig", "PartitionTimeLimit", "PartitionNodeLimit", "BadConstraints")
NODE_REASON = "ReqNodeNotAvail"  # hopeless only when a requested node does not exist at all
COMMAND_TIMEOUT_S = 30


@dataclass
class PartitionLimits:
    """The largest node of one partition (per resource) and the partition's own time limit."""
    name: str
    cpus: int = 0
    mem_mb: int = 0
    gpus: int = 0
    max_minutes: float | None = None  # None: no limit
    nodes: set[str] = field(default_factory=set)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=COMMAND_TIMEOUT_S).stdout


def minutes(text: str) -> float | None:
    """SLURM time ([D-]HH:MM:SS, MM:SS, MM, UNLIMITED/INFINITE) in minutes; None for no limit."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INFINITE", "N/A", "NONE"):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 1:
        h, m, s = 0, parts[0], 0
    elif len(parts) == 2:
        h, m, s = 0, parts[0], parts[1]
    else:
        h, m, s = parts[-3:]
    return days * 1440 + h * 60 + m + s / 60


def _gpus(gres: str) -> int:
    """GPU count in a gres/TRES string such as 'gpu:1', 'gpu:a100:4(S:0)', 'gres/gpu=2' (0 when none)."""
    total = 0
    for m in re.finditer(r"gpu(?::[A-Za-z0-9_.-]+?)?[:=](\d+)", gres or ""):
        total += int(m.group(1))
    return total


def _mb(text: str) -> int:
    """SLURM memory ('2000M', '19G', '2000') in MB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", text.strip().upper())
    if not m:
        return 0
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 ** 2}[m.group(2)]
    return int(float(m.group(1)) * scale)


def parse_sinfo(text: str) -> tuple[dict[str, PartitionLimits], str | None]:
    """Per-partition limits from `sinfo -h -N -o '%P|%N|%c|%m|%G|%l'`; also the default partition."""
    parts: dict[str, PartitionLimits] = {}
    default = None
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        name, node, cpus, mem, gres, limit = fields
        if name.endswith("*"):
            name = name[:-1]
            default = name
        p = parts.setdefault(name, PartitionLimits(name, max_minutes=minutes(limit)))
        p.nodes.add(node)
        p.cpus = max(p.cpus, int(re.sub(r"\D", "", cpus) or 0))
        p.mem_mb = max(p.mem_mb, _mb(mem))
        p.gpus = max(p.gpus, _gpus(gres))
    return parts, default


def cluster_limits() -> tuple[dict[str, PartitionLimits], str | None]:
    """What the cluster's partitions offer, from sinfo."""
    return parse_sinfo(_run("sinfo", "-h", "-N", "-o", "%P|%N|%c|%m|%G|%l"))


def group_caps(partitions: dict[str, PartitionLimits]) -> tuple[int, int]:
    """(CPUs, MB) one group job may ask: the smallest, over partitions, of their largest node."""
    if not partitions:
        raise ValueError("sinfo lists no partition with nodes")
    return min(p.cpus for p in partitions.values()), min(p.mem_mb for p in partitions.values())


def parse_job(text: str) -> dict[str, str]:
    """`scontrol show job -o ID` (one line of Key=Value) as a dict."""
    out = {}
    for item in text.split():
        if "=" in item:
            key, value = item.split("=", 1)
            out.setdefault(key, value)
    return out


def rule_of(job: dict[str, str]) -> str:
    """The Snakemake rule (or group) a job runs, from the plugin's comment rule_<name>[_wildcards_...]."""
    comment = job.get("Comment", "")
    return re.sub(r"^rule_", "", comment.split("_wildcards_")[0]) or f"job {job.get('JobId', '?')}"


def hopeless(job: dict[str, str], partitions: dict[str, PartitionLimits]) -> str | None:
    """Why this pending job can never start (rule, request, limit), or None if it may still start."""
    reason = job.get("Reason", "")
    partition = job.get("Partition", "").split(",")[0]
    limits = partitions.get(partition)
    known_nodes = set().union(*(p.nodes for p in partitions.values())) if partitions else set()
    if reason.startswith(NODE_REASON):
        wanted = {n for n in re.split(r"[,\s]+", job.get("ReqNodeList", "")) if n and n != "(null)"}
        missing = sorted(wanted - known_nodes)
        if not missing:
            return None  # a node that exists but is down or drained may come back
        why = f"it asks for node(s) {', '.join(missing)}, which this cluster does not have"
    elif reason in NEVER_REASONS:
        why = ""
    else:
        return None
    cpus = int(job.get("NumCPUs", "0") or 0)
    mem = _mb(job.get("MinMemoryNode", "0") or "0") or _mb(job.get("MinMemoryCPU", "0") or "0") * max(cpus, 1)
    gpus = _gpus(job.get("TresPerJob", "")) + _gpus(job.get("TresPerNode", ""))
    limit_min = minutes(job.get("TimeLimit", ""))
    request = f"{cpus} CPUs, {mem} MB, {gpus} GPU(s), " + (f"{limit_min:.0f} min" if limit_min else "no time limit")
    if limits is None:
        offer = f"partition {partition or '?'} has no node"
        over = [f"partition {partition or '?'} does not exist or has no node"]
    else:
        offer = (f"its largest node offers {limits.cpus} CPUs, {limits.mem_mb} MB, {limits.gpus} GPU(s); time limit "
                 + (f"{limits.max_minutes:.0f} min" if limits.max_minutes else "none"))
        over = [f"{what} {asked} > {can}" for what, asked, can in (
            ("CPUs", cpus, limits.cpus), ("memory MB", mem, limits.mem_mb), ("GPUs", gpus, limits.gpus))
            if asked > can]
        if limits.max_minutes and limit_min and limit_min > limits.max_minutes:
            over.append(f"time {limit_min:.0f} min > {limits.max_minutes:.0f} min")
    if why:
        over.insert(0, why)
    return (f"rule {rule_of(job)} (SLURM job {job.get('JobId', '?')}) can never start on partition {partition}: "
            f"it asks {request}; {offer}" + (f" ({'; '.join(over)})" if over else "")
            + f" [pending reason {reason}]. Cancelled: lower the rule's threads/resources, or point it at a "
            "partition with larger nodes in profiles/slurm (set-resources)")


class PendingGuard(threading.Thread):
    """Polls this run's pending jobs and cancels those SLURM can never start, logging why.

    Jobs are this run's when the executor plugin submitted them (comment rule_...) from this
    working directory. `report` receives each message (Snakemake's logger in the workflow);
    `no_retry(rule)` is called for the rule of each cancelled job, so that the workflow does not
    resubmit a request that can never run (profiles/slurm retries failed jobs twice)."""

    def __init__(self, workdir: str, report, interval_s: float, no_retry=None):
        super().__init__(name="spectbone-slurm-pending-guard", daemon=True)
        self.workdir = os.path.realpath(workdir)
        self.report = report
        self.no_retry = no_retry
        self.interval_s = interval_s
        self.cancelled: list[str] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def check_once(self) -> list[str]:
        """One poll: cancel every hopeless pending job of this run; returns the messages."""
        candidates = []
        for line in _run("squeue", "-h", "--states=PENDING", "-o", "%i|%r|%k").splitlines():
            jobid, reason, comment = (line.split("|", 2) + ["", ""])[:3]
            if comment.startswith("rule_") and (reason in NEVER_REASONS or reason.startswith(NODE_REASON)):
                candidates.append(jobid)
        if not candidates:
            return []
        partitions, _ = cluster_limits()
        messages = []
        for jobid in candidates:
            try:
                job = parse_job(_run("scontrol", "show", "job", "-o", jobid))
            except subprocess.CalledProcessError:
                continue  # finished or cancelled meanwhile
            if os.path.realpath(job.get("WorkDir", "")) != self.workdir or job.get("JobState") != "PENDING":
                continue
            message = hopeless(job, partitions)
            if message and jobid not in self.cancelled:
                if self.no_retry is not None:
                    self.no_retry(rule_of(job))  # before the cancel, so the plugin's next poll sees it final
                subprocess.run(["scancel", jobid], capture_output=True, timeout=COMMAND_TIMEOUT_S)
                self.cancelled.append(jobid)
                messages.append(message)
                self.report(message)
        return messages

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_once()
            except (OSError, subprocess.SubprocessError) as exc:  # a busy controller: try again next poll
                log.debug("pending-job check failed: %s", exc)
