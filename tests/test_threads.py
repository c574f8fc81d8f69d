import threading
import time

import pytest
import torch

from lossless_bpg.threads import Background, torch_threads


def test_a_background_job_gives_its_result_and_runs_on_a_daemon_thread():
    seen = []

    def job():
        seen.append(threading.current_thread())
        time.sleep(0.05)
        return 42

    assert Background(job).result() == 42
    assert seen[0] is not threading.main_thread() and seen[0].daemon


def test_a_background_jobs_error_is_raised_where_its_result_is_asked_for():
    def job():
        raise KeyError("lost")

    waiting = Background(job)
    with pytest.raises(KeyError, match="lost"):
        waiting.result()


def test_torch_threads_sets_and_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    with torch_threads(None):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_setting_the_thread_count_does_not_import_torch():
    """The sequential coder never needs torch (~0.9 s to import): --threads must not load it;
    torch takes the count from the environment if a job imports it later."""
    import os
    import subprocess
    import sys

    script = ("import sys\n"
              "from lossless_bpg.threads import set_torch_threads\n"
              "set_torch_threads(1)\n"
              "assert 'torch' not in sys.modules\n"
              "import torch\n"
              "assert torch.get_num_threads() == 1\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                   env={k: v for k, v in dict(os.environ, PYTHONPATH=root).items() if k != "OMP_NUM_THREADS"})
