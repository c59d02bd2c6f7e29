"""spectbone.util.slurm_fit on records as SLURM 22.05 prints them (sinfo, scontrol show job -o):
what a node offers, what a group may ask, and which pending jobs can never start (issue 20).
The real cluster run of the same code is in tests/test_slurm.py."""

from __future__ import annotations

from spectbone.util.slurm_fit import group_caps, hopeless, minutes, parse_job, parse_sinfo

SINFO = """debug*|vm|2|19284|gpu:1|infinite
gpu|vm|2|19284|gpu:1|infinite
big|n1|64|512000|gpu:a100:4(S:0-1)|2-00:00:00
big|n2|32|256000|(null)|2-00:00:00
"""
JOB = ("JobId=8 JobName=4189b12e JobState=PENDING Reason=PartitionConfig Dependency=(null) TimeLimit=01:00:00 "
       "Partition=debug ReqNodeList=(null) NumCPUs=64 MinMemoryNode=2000M TresPerJob=gres:gpu:1 "
       "WorkDir=/work/x Comment=rule_synthesize_wildcards_a_b")


def test_node_limits_and_group_caps_from_sinfo():
    parts, default = parse_sinfo(SINFO)
    assert default == "debug" and set(parts) == {"debug", "gpu", "big"}
    assert (parts["big"].cpus, parts["big"].mem_mb, parts["big"].gpus) == (64, 512000, 4)
    assert parts["big"].max_minutes == 2 * 1440 and parts["debug"].max_minutes is None
    assert group_caps(parts) == (2, 19284)  # a group must fit the smallest partition's largest node
    assert minutes("1-02:03:00") == 1440 + 123 and minutes("30") == 30 and minutes("UNLIMITED") is None


def test_pending_job_over_every_node_is_hopeless_and_says_why():
    parts, _ = parse_sinfo(SINFO)
    job = parse_job(JOB)
    message = hopeless(job, parts)
    assert message.startswith("rule synthesize (SLURM job 8) can never start on partition debug")
    assert "asks 64 CPUs, 2000 MB, 1 GPU(s), 60 min" in message and "largest node offers 2 CPUs" in message
    assert "CPUs 64 > 2" in message and "PartitionConfig" in message
    # over the partition's time limit
    slow = parse_job(JOB.replace("Partition=debug", "Partition=big").replace("NumCPUs=64", "NumCPUs=8")
                     .replace("TimeLimit=01:00:00", "TimeLimit=3-00:00:00").replace("PartitionConfig",
                                                                                     "PartitionTimeLimit"))
    assert "time 4320 min > 2880 min" in hopeless(slow, parts)


def test_waiting_for_resources_or_a_down_node_is_not_hopeless_but_a_missing_node_is():
    parts, _ = parse_sinfo(SINFO)
    assert hopeless(parse_job(JOB.replace("PartitionConfig", "Resources")), parts) is None
    down = parse_job(JOB.replace("Reason=PartitionConfig", "Reason=ReqNodeNotAvail,_UnavailableNodes:n1")
                     .replace("ReqNodeList=(null)", "ReqNodeList=n1"))
    assert hopeless(down, parts) is None  # n1 exists: it may come back
    gone = parse_job(JOB.replace("Reason=PartitionConfig", "Reason=ReqNodeNotAvail,_UnavailableNodes:n9")
                     .replace("ReqNodeList=(null)", "ReqNodeList=n9"))
    assert "node(s) n9, which this cluster does not have" in hopeless(gone, parts)
