"""Workloads: job requests, the job service (admission under a lock), executors (real
processes with power caps, or simulated work for replay), the runner that applies the control
cycle's commands, per-job energy accounting, and job streams built from real traces."""
