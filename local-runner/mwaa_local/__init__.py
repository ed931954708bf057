"""mwaa-local: Airflow 3.3.1 on this machine as MWAA runs it, without Docker.

One module a job: ``components`` (start/stop the four Airflow processes), ``database``
(SQLite or PostgreSQL), ``settings_file`` (connections, variables and configuration
options from a checked-in file), ``startup`` (MWAA's startup-script rules),
``requirements`` (install under the constraints; wheels for a private network) and
``cli`` (the verbs).
"""
