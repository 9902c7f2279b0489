#!/usr/bin/env python3
"""Run a command with a pseudo-terminal as its stdin, stdout and stderr (a user's terminal, COLUMNS
wide), and write everything it printed, byte for byte, to OUTPUT. Exits with the command's status.
Usage: pty_run.py OUTPUT COLUMNS COMMAND [ARG...]"""
import fcntl
import os
import pty
import struct
import sys
import termios

output, columns, command = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    os.execv(command[0], command)
captured = bytearray()
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: the child closed its side
        break
    if not data:
        break
    captured += data
_, status = os.waitpid(pid, 0)
with open(output, "wb") as f:
    f.write(captured)
sys.exit(os.waitstatus_to_exitcode(status))
