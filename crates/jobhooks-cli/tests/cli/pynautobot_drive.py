"""Drives a jobhooks server with pynautobot, as a Nautobot automation script would.

Run by the `pynautobot` test of the CLI's suite, with JOBHOOKS_URL, JOBHOOKS_TOKEN, BUTTON_JOB
and HOOK_JOB set. Each step asserts what Nautobot would answer; the first that does not holds
stops the script with its message.
"""

import os

import pynautobot

url, token = os.environ["JOBHOOKS_URL"], os.environ["JOBHOOKS_TOKEN"]
nb = pynautobot.api(url, token=token)
assert nb.version == "2.4", f"API version {nb.version!r}"

# Jobs: listed, found by a filter, read by id.
jobs = nb.extras.jobs.all()
assert len(jobs) >= 2, jobs
button_job = nb.extras.jobs.get(class_path=os.environ["BUTTON_JOB"])
hook_job = nb.extras.jobs.get(class_path=os.environ["HOOK_JOB"])
assert button_job.is_job_button_receiver and not button_job.is_job_hook_receiver
assert nb.extras.jobs.get(button_job.id).name == button_job.name

# Job hooks: create, get by id and by name, filter, change, count.
hook = nb.extras.job_hooks.create(
    name="py-hook", content_types=["dcim.device"], job=hook_job.id, type_create=True
)
assert hook.id and hook.url.endswith(f"/api/extras/job-hooks/{hook.id}/"), hook.url
assert str(hook) == "py-hook"
assert nb.extras.job_hooks.get(hook.id).name == "py-hook"
assert nb.extras.job_hooks.get(name="py-hook").id == hook.id
assert nb.extras.job_hooks.filter(name="no-such-hook") == [], "a filter that matches nothing"
assert nb.extras.job_hooks.get(hook.id).job.id == hook_job.id
hook.enabled = False
assert hook.save()
assert nb.extras.job_hooks.get(hook.id).enabled is False
assert hook.update({"type_update": True})
assert nb.extras.job_hooks.get(hook.id).type_update is True
try:
    nb.extras.job_hooks.filter(nmae="py-hook")
    raise SystemExit("a misspelt filter was accepted")
except pynautobot.RequestError as error:
    assert error.req.status_code == 400, error.req.status_code

# Pagination: eight hooks, read three to a page, all of them come back once.
for index in range(7):
    nb.extras.job_hooks.create(
        name=f"page-{index}", content_types=[f"dcim.kind{index}"], job=hook_job.id, type_delete=True
    )
assert nb.extras.job_hooks.count() == 8
paged = nb.extras.job_hooks.all(limit=3)
assert len(paged) == 8 and len({record.id for record in paged}) == 8, paged
assert nb.extras.job_hooks.count(name="page-3") == 1

# Job buttons: create, get, change, then press through the job's run endpoint.
button = nb.extras.job_buttons.create(
    name="py-button", content_types=["dcim.location"], text="Run on {{ obj }}", job=button_job.id
)
assert nb.extras.job_buttons.get(button.id).text == "Run on {{ obj }}"
button.weight = 50
assert button.save()
assert nb.extras.job_buttons.get(name="py-button").weight == 50

answer = nb.extras.jobs.run(
    job_id=button_job.id, data={"object_pk": "hq", "object_model_name": "dcim.location"}
)
result = answer.job_result
assert result.id, answer
# The server answers once the run has ended, or after the wait.
final = nb.extras.job_results.get(result.id, wait=30)
assert str(final.status) == "SUCCESS", final.status
assert final.job_model.id == button_job.id

logs = nb.extras.job_logs.filter(job_result=result.id)
assert logs, "the run logged"
assert all(entry.job_result.id == result.id for entry in logs)
assert {entry.log_level for entry in logs} <= {"debug", "info", "success", "warning", "failure", "error", "critical"}

# Deletes: one by one, and several at once.
nb.extras.job_buttons.get(button.id).delete()
assert nb.extras.job_buttons.get(button.id) is None
pages = nb.extras.job_hooks.filter(q="page-")
assert len(pages) == 7
assert nb.extras.job_hooks.delete(pages)
assert nb.extras.job_hooks.count() == 1
assert hook.delete()
assert nb.extras.job_hooks.count() == 0

print("pynautobot: every call worked")
