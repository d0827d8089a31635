from lpc.cli import run

run()
