#!/usr/bin/env python3
"""Writes cordon-dashboard.json, the Grafana dashboard for the metric
catalogue (README, Monitoring). The JSON is committed; edit this and run
`python3 deploy/grafana/gen.py` rather than editing the JSON by hand, so
the panels stay regular."""
import json, os, sys

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'instance=~"$instance"'
panels, y, pid = [], 0, 0

def row(title):
    global y, pid
    pid += 1
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
    y += 1

def panel(title, targets, unit="short", kind="timeseries", w=8, desc=""):
    global pid
    pid += 1
    x = sum(p["gridPos"]["w"] for p in panels if p["gridPos"]["y"] == y and p["type"] != "row")
    p = {"type": kind, "title": title, "id": pid, "datasource": DS, "description": desc,
         "gridPos": {"h": 8, "w": w, "x": x, "y": y},
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi"}} if kind == "timeseries" else
                    {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
         "targets": [{"datasource": DS, "refId": chr(65 + i), "expr": e, "legendFormat": l}
                     for i, (e, l) in enumerate(targets)]}
    panels.append(p)

def newline():
    global y
    y += 8

def q(metric_expr):
    return metric_expr.replace("{SEL}", SEL)

row("Fleet")
panel("Devices by compliance", [(q('sum by (compliance) (cordon_devices{{SEL}})'), "{{compliance}}")])
panel("Devices online by platform", [(q('sum by (platform) (cordon_devices{{SEL},online="true"})'), "{{platform}}")])
panel("Gateway connections", [(q('sum(cordon_gateway_connections{{SEL}})'), "connections")],
      desc="CordonGatewayConnectionsHalved fires when this halves within 5 minutes.")
newline()
panel("Agent versions", [(q('sum by (os, version) (cordon_agent_devices{{SEL}})'), "{{os}} {{version}}")])
panel("Handshakes by outcome", [(q('sum by (outcome) (rate(cordon_gateway_handshakes_total{{SEL}}[5m]))'), "{{outcome}}")],
      unit="ops", desc="admission_limited and failed feed CordonHandshakeStorm.")
panel("Handshake duration", [
    (q('histogram_quantile(0.5, sum by (le) (rate(cordon_gateway_handshake_duration_seconds_bucket{{SEL}}[5m])))'), "p50"),
    (q('histogram_quantile(0.99, sum by (le) (rate(cordon_gateway_handshake_duration_seconds_bucket{{SEL}}[5m])))'), "p99")], unit="s")
newline()
row("Reports")
panel("Reports ingested", [(q('sum(rate(cordon_reports_ingested_total{{SEL}}[5m]))'), "reports/s")], unit="ops")
panel("Report commit latency", [
    (q('histogram_quantile(0.5, sum by (le) (rate(cordon_report_commit_duration_seconds_bucket{{SEL}}[5m])))'), "p50"),
    (q('histogram_quantile(0.99, sum by (le) (rate(cordon_report_commit_duration_seconds_bucket{{SEL}}[5m])))'), "p99")],
      unit="s", desc="CordonIngestLatencyHigh fires when p99 stays over 250 ms.")
panel("Group-commit batch size", [
    (q('histogram_quantile(0.5, sum by (le) (rate(cordon_group_commit_batch_size_bucket{{SEL}}[5m])))'), "p50"),
    (q('histogram_quantile(0.99, sum by (le) (rate(cordon_group_commit_batch_size_bucket{{SEL}}[5m])))'), "p99")])
newline()
row("Commands")
panel("Commands issued by kind", [(q('sum by (kind) (increase(cordon_commands_issued_total{{SEL}}[1h]))'), "{{kind}}")])
panel("Commands finished by status", [(q('sum by (kind, status) (increase(cordon_commands_finished_total{{SEL}}[1h]))'), "{{kind}} {{status}}")])
panel("Issue-to-answer latency p99", [
    (q('histogram_quantile(0.99, sum by (kind, le) (rate(cordon_command_duration_seconds_bucket{{SEL}}[15m])))'), "{{kind}}")], unit="s")
newline()
panel("Unfinished commands", [(q('sum by (status) (cordon_commands_unfinished{{SEL}})'), "{{status}}")])
panel("Oldest unfinished command", [(q('max by (status) (cordon_commands_oldest_unfinished_age_seconds{{SEL}})'), "{{status}}")],
      unit="s", desc="CordonCommandsStuck fires when a delivered command stays unanswered for 15 minutes.")
panel("Rate-limited requests", [(q('sum by (limiter) (rate(cordon_rate_limited_requests_total{{SEL}}[5m]))'), "{{limiter}}")], unit="ops")
newline()
row("Incidents (IR-4, IR-6)")
panel("Open incidents", [(q('sum by (category, severity) (cordon_incidents_open{{SEL}})'), "{{category}} {{severity}}")])
panel("Overdue against IR-6", [(q('sum(cordon_incidents_overdue{{SEL}})'), "overdue")], kind="stat",
      desc="CordonIncidentReportOverdue fires above 0.")
panel("Escalations", [(q('sum(increase(cordon_incident_escalations_total{{SEL}}[1h]))'), "escalations/h")])
newline()
panel("Time to report", [
    (q('histogram_quantile(0.5, sum by (le) (rate(cordon_incident_report_delay_seconds_bucket{{SEL}}[1d])))'), "p50"),
    (q('histogram_quantile(0.9, sum by (le) (rate(cordon_incident_report_delay_seconds_bucket{{SEL}}[1d])))'), "p90")], unit="s")
panel("Notification outbox depth", [(q('sum by (channel) (cordon_notify_outbox_depth{{SEL}})'), "{{channel}}")])
panel("Oldest undelivered notification", [(q('max by (channel) (cordon_notify_outbox_oldest_age_seconds{{SEL}})'), "{{channel}}")],
      unit="s", desc="CordonNotifyOutboxStuck fires at 15 minutes.")
newline()
panel("Notification deliveries and failures", [
    (q('sum by (channel) (rate(cordon_notify_deliveries_total{{SEL}}[5m]))'), "{{channel}} delivered"),
    (q('sum by (channel) (rate(cordon_notify_failures_total{{SEL}}[5m]))'), "{{channel}} failed")], unit="ops")
newline()
row("Audit (AU-5, AU-9)")
panel("Audit entries written", [(q('sum(rate(cordon_audit_entries_total{{SEL}}[5m]))'), "entries/s")], unit="ops")
panel("Audit write failures", [(q('sum(increase(cordon_audit_write_failures_total{{SEL}}[10m]))'), "failures")], kind="stat",
      desc="CordonAuditWriteFailure fires on any.")
panel("Last audit checkpoint age", [(q('max(cordon_audit_checkpoint_age_seconds{{SEL}})'), "age")], unit="s", kind="stat")
newline()
row("API and console")
panel("Requests by status class", [(q('sum by (handler, status_class) (rate(cordon_http_request_duration_seconds_count{{SEL}}[5m]))'), "{{handler}} {{status_class}}")], unit="reqps")
panel("Slowest routes (p99)", [(q('topk(5, histogram_quantile(0.99, sum by (route, le) (rate(cordon_http_request_duration_seconds_bucket{{SEL}}[5m]))))'), "{{route}}")], unit="s")
panel("Certificate expiry", [(q('min by (certificate) (cordon_certificate_expiry_timestamp_seconds{{SEL}}) - time()'), "{{certificate}}")],
      unit="s", desc="CordonCertificateExpiringSoon fires under 30 days.")

dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
                   {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
    "title": "Cordon", "uid": "cordon-overview", "tags": ["cordon", "cjis"], "editable": True,
    "description": "Cordon MDM server: fleet, gateway, reports, commands, incidents, notifications, audit (README, Monitoring).",
    "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [{"name": "instance", "type": "query", "datasource": DS, "label": "Server",
                             "query": {"query": "label_values(cordon_gateway_connections, instance)", "refId": "instance"},
                             "definition": "label_values(cordon_gateway_connections, instance)",
                             "includeAll": True, "multi": True, "current": {}, "refresh": 2}]},
    "annotations": {"list": []}, "panels": panels,
}
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "cordon-dashboard.json")
with open(out, "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
