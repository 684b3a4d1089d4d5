"""Run a command; write its wall time and its own peak RSS as JSON.

    python bench/run_measured.py RESULT.json COMMAND [ARG ...]

Why a separate small process: on Linux a child's ``ru_maxrss`` starts at the
peak RSS of the process that started it (the high-water mark is handed on by
fork and exec), so a command started straight from the benchmark, which holds
TensorFlow and VGG16, would report at least the benchmark's own peak; the same
holds for ``getrusage(RUSAGE_CHILDREN)``. Started from this launcher (about
10 MiB), the command's figure is its own. The command's output and exit code
pass through; RESULT.json holds ``wall_s``, ``cpu_s`` (the command's user and
system CPU time), ``maxrss_kib``, ``exit_code`` and
``write_bytes``: the bytes the command (and the children it waited for) handed
to the file system, from ``ru_oublock`` (Linux counts it in 512-byte units of
the task's ``write_bytes`` I/O accounting: temporary files, journals and files
removed afterwards included; 0 on file systems without a block device, such as
tmpfs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
    with open(result, "w") as f:
        json.dump(
            {
                "wall_s": wall,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "maxrss_kib": kib,
                "exit_code": code,
                "write_bytes": usage.ru_oublock * 512,
            },
            f,
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main())
