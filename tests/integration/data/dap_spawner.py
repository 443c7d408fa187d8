"""A debuggee with a subprocess: runs the echo app as a child process and waits for it."""

import subprocess
import sys
from pathlib import Path

ECHO_APP = Path(__file__).resolve().parents[3] / "tools" / "sample" / "echo.py"

sys.exit(subprocess.call([sys.executable, str(ECHO_APP)]))
