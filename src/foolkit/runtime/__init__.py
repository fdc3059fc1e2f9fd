"""What a run needs from its surroundings: devices and the machine, output files, progress bars."""
