"""Select stage: waveform metrics, gathering of runs, ranking against constraints."""
