"""The operations API: every user operation exists once here, takes plain arguments and an actor, and returns
dataclasses (never text for one medium). The Slack handlers, the CLI and the jobs call these and render the
results their own way.

- catalog: add/update/remove images and registries, import/export the catalog file, render a Dockerfile
- build: build → doctor → push (the Builder), doctor any image, digest, status, log
- rebuild: which images are due, base checks, recorded exclusive rebuild runs with their channel reports
- launch, launch_budget: clusters on pinned digests, the pull budget a launch needs, following clusters
- approvals: switching Container Services on with four eyes; workspace status
- budget: the Docker Hub pull budget (read, sample, report)
- runs: recorded exclusive runs (job_runs) shared by the scheduler and the manual triggers
- (the Notifier port through which jobs deliver their reports is bot/domain/notify.py; Slack implements it)
"""
