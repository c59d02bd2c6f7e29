"""BM3D jobs spend their core on BM3D: the job's code path loads no torch (one import per job saved)."""

import subprocess
import sys


def test_bm3d_job_path_imports_no_torch():
    code = ("import sys; import spectbone.infer.testset, spectbone.evaluate.classical, spectbone.noise.estimators; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
