"""The chaos soak (issue 13): many runs, many faults at once, processes that die.

driver.py   starts the stack, submits the runs, runs the fault schedule, kills and restarts processes
schedule.py the fault tables (one line per mode) and the timed outages
executor.py a drainer process: claims runs from the pool's queues and runs them in-process
audit.py    reads only the Prefect API, the state stores, the emulators' logs and the alert/span sinks
"""
