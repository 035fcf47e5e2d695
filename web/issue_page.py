"""The issue page's route: chart, latest event, tags panel and activity of one issue."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api import issue_details
from api.directory import Project
from api.serializers import serialize_group
from transforms.core.enums import ActivityType
from web import charts, session, tags_panel
from web.pages import IGNORE_DURATIONS, Pages, Refused, Timings, flash, issue_row
from web.timerange import PRESET_LABELS, RangeError, parse_range

# Index entries the issue page's chart may read: past this the chart says it was cut short.
CHART_BUDGET = 1_000_000
ACTIVITY_LIMIT = 50
ACTIVITY_LABELS = {
    ActivityType.SET_RESOLVED: "Resolved",
    ActivityType.SET_UNRESOLVED: "Marked as unresolved",
    ActivityType.SET_IGNORED: "Ignored",
    ActivityType.SET_REGRESSION: "Regressed",
    ActivityType.SET_RESOLVED_IN_RELEASE: "Resolved in release",
    ActivityType.AUTO_SET_ONGOING: "Marked as ongoing (no longer escalating)",
    ActivityType.SET_ESCALATING: "Escalating",
    ActivityType.SET_PRIORITY: "Priority changed",
}


def add_issue_routes(router: APIRouter, pages: Pages) -> None:
    index, now, render = pages.index, pages.now, pages.render
    viewer_for, guarded = pages.viewer_for, pages.guarded
    stream_path = pages.stream_path

    @router.get("/organizations/{organization}/issues/{group_id}/")
    def issue(request: Request, organization: str, group_id: str) -> Response:
        return guarded(request, lambda: issue_page(request, organization, group_id))

    def issue_page(request: Request, organization: str, group_id: str) -> Response:
        viewer = viewer_for(request, organization)
        notice = flash(request)
        moment = now()
        params = request.query_params
        range_error = None
        try:
            window = parse_range(params.get("period"), params.get("start"), params.get("end"), moment)
        except RangeError as exc:
            range_error = str(exc)
            window = parse_range(None, None, None, moment)
        if not (group_id.isascii() and group_id.isdigit() and len(group_id) <= 19):
            raise Refused(404, "Issue not found", "There is no such issue in this organization.")
        timings = Timings()
        began = time.perf_counter()
        with index.database.snapshot(multi_use=True) as snapshot:
            row = issue_details.group_row(snapshot, int(group_id))
            if row is None or row.organization_id != viewer.organization.id:
                raise Refused(404, "Issue not found", "There is no such issue in this organization.")
            series = issue_details.event_counts(snapshot, [row.group_id], window.buckets, CHART_BUDGET)[
                row.group_id
            ]
            latest = issue_details.latest_event(snapshot, row.group_id)
            event = latest.event if latest is not None else None
            if latest is not None and event is None:
                event = issue_details.stored_event(snapshot, latest.project_id, latest.event_id)
            history, older = issue_details.activities(snapshot, row.group_id, ACTIVITY_LIMIT)
            environments = issue_details.environments(snapshot, [row.group_id]).get(row.group_id, [])
            stored_tags = tags_panel.stored_tags(snapshot, row.group_id)
        timings.add("reads", began)
        project = viewer.projects.get(row.project_id) or Project(
            row.project_id, row.organization_id, str(row.project_id)
        )
        issue = serialize_group(row, project)
        path = f"{stream_path(viewer.organization)}{row.group_id}/"
        response = render(
            request,
            "issue.html",
            viewer=viewer,
            issue=issue_row(issue, series, moment),
            group=row,
            window=window,
            range_error=range_error,
            presets=PRESET_LABELS,
            chart=charts.bar_chart(series),
            series=series,
            latest=latest,
            event=event,
            event_extras={
                k: event[k] for k in ("request", "user", "contexts", "sdk") if event and event.get(k)
            },
            tag_panel=tags_panel.tag_panel(latest, event, stored_tags),
            activities=[_activity(a) for a in history],
            older_activities=older,
            environments=environments,
            notice=notice,
            ignore_durations=IGNORE_DURATIONS,
            issue_path=path,
            stream_path=stream_path(viewer.organization),
            timings=timings,
        )
        if notice is not None:
            response.delete_cookie(session.FLASH_COOKIE)
        return response


def _activity(activity: issue_details.Activity) -> dict[str, Any]:
    data = activity.data
    label = ACTIVITY_LABELS.get(activity.type, f"Activity {activity.type}")
    detail = ""
    if activity.type == ActivityType.SET_RESOLVED_IN_RELEASE:
        version = data.get("version")
        if data.get("type") == "in_next_release":
            label = "Resolved in the next release"
            detail = f"after {version}" if version else ""
        else:
            detail = str(version or "")
    elif activity.type == ActivityType.SET_REGRESSION and data.get("version"):
        detail = f"in {data['version']}"
    elif activity.type == ActivityType.SET_PRIORITY:
        priority = data.get("priority")
        detail = " ".join(
            str(part) for part in (priority, f"({data['reason']})" if data.get("reason") else "") if part
        )
    return {"label": label, "detail": detail, "time": activity.time, "type": int(activity.type)}
