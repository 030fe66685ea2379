"""`kubectl kuberik`: the entry point, argument parsing and the text output of every command.

Exit codes (docs/cli.md): 1 usage, input or API error; actions and `plan` exit 0 when they did
their job; `status`/`get`/`why` exit 0 when up to date or deploying normally, 2 when
something blocks a release, 3 when the bake failed or the Rollout is stalled.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NoReturn, TextIO

from hooks.api import kinds
from hooks.cli import actions, errors, plan, render, report, why
from hooks.cli.errors import CliError
from hooks.cli.kube import Kube, load_config
from hooks.k8s import format_time, meta, parse_time

WATCH_INTERVAL_S = 2.0
ACTIONS = ("pin", "unpin", "deploy", "retry", "unblock", "bypass", "suspend", "resume")


def clock() -> datetime:
    """The CLI's clock (tests replace it)."""
    return datetime.now(UTC)


#: How a Kube is made from the parsed arguments (tests point it at the fake API server).
def connect(args: argparse.Namespace) -> Kube:
    return Kube(load_config(args.kubeconfig, args.context), args.namespace)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise CliError(message)


def parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    out = _Parser(add_help=False)
    out.add_argument("-o", "--output", choices=render.FORMATS, default="table", help="output format")
    watch = _Parser(add_help=False)
    watch.add_argument("-w", "--watch", action="store_true", help="print again whenever it changes")
    watch.add_argument("--watch-rounds", type=int, default=0, help=argparse.SUPPRESS)  # tests: stop after N

    top = _Parser(
        prog="kubectl kuberik",
        description="Operate kuberik Rollouts: what is deployed, why a release waits, operator actions.",
        epilog=(
            "exit codes: 0 done / up to date or deploying; 1 usage, input or API error; "
            "2 something blocks a release; 3 the bake failed or the Rollout is stalled. "
            "Each action writes one guarded JSON Patch on the Rollout; see docs/cli.md."
        ),
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("get", parents=[common, out, watch], help="list the Rollouts of a namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    p = sub.add_parser("status", parents=[common, out, watch], help="one Rollout: bake, deadline, what waits")
    p.add_argument("name", metavar="NAME")
    p = sub.add_parser("history", parents=[common, out], help="the deployments of a Rollout")
    p.add_argument("name", metavar="NAME")
    p = sub.add_parser(
        "why", parents=[common, out], help="why each release is (not) deploying, from the engine"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("tag", metavar="TAG", nargs="?")

    helps = {
        "pin": "deploy exactly TAG until unpinned (spec.wantedVersion)",
        "unpin": "remove the pin",
        "deploy": "deploy TAG once (rollout.kuberik.com/force-deploy)",
        "retry": "re-run the failed bake of the deployed version",
        "unblock": "let the next automatic deploy pass a failed bake or unhealthy checks",
        "bypass": "let TAG through gates and holds (rollout.kuberik.com/bypass-gates)",
        "suspend": "stop automatic deploys (spec.suspend: true)",
        "resume": "resume automatic deploys (spec.suspend: false)",
    }
    for verb in ACTIONS:
        p = sub.add_parser(verb, parents=[common], help=helps[verb])
        p.add_argument("name", metavar="NAME")
        if verb in ("pin", "deploy", "bypass"):
            p.add_argument("tag", metavar="TAG")
        if verb in ("pin", "deploy"):
            p.add_argument(
                "--message", help="message of the deploy in history (rollout.kuberik.com/deploy-message)"
            )
            p.add_argument("--user", help="who deploys, in history (rollout.kuberik.com/deploy-user)")
        p.add_argument("--dry-run", action="store_true", help="print the patch, send nothing")
        p.add_argument(
            "--force",
            action="store_true",
            help="send it although Flux applies this Rollout (see docs/cli.md)",
        )

    p = sub.add_parser("plan", parents=[out], help="offline: the controller's decision over YAML files")
    p.add_argument(
        "-f", "--filename", action="append", required=True, metavar="PATH", help="file or directory"
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the Rollout (needed when the files hold several)")
    p.add_argument("--at", help="the clock, RFC 3339 (default: now)")
    p.add_argument("-n", "--namespace", help="namespace of the objects that name none (as kubectl apply -n)")
    return top


# --- commands ---------------------------------------------------------------------------------


def _rollout(kube: Kube, name: str) -> dict:
    return kube.get("Rollout", name)


def _gates(kube: Kube, namespace: str, err: TextIO) -> list[dict] | None:
    """The namespace's RolloutGates (for schedules' "closed until"); None when not readable."""
    try:
        return kube.list("RolloutGate", namespace)
    except CliError as exc:
        print(f"warning: {exc.message}; schedule gates shown without their next transition", file=err)
        return None


def _status_text(view: dict) -> str:
    ready = view["ready"]
    bake = view["bake"]
    lines = [f"Rollout {view['namespace']}/{view['name']}"]
    lines.append(f"  deployed:  {view['deployed'] or '-'}")
    line = f"  bake:      {bake.get('status') or '-'}"
    if bake.get("message"):
        line += f" ({bake['message']})"
    lines.append(line)
    if bake.get("deadline"):
        lines.append(f"  deadline:  {bake['deadlineKind']} at {bake['deadline']} ({bake['deadlineIn']})")
    if ready.get("status"):
        lines.append(
            f"  ready:     {ready['status']} {ready.get('reason') or ''}: {ready.get('message') or ''}"
        )
    lines.append(f"  candidates: {', '.join(view['candidates']) or '-'}")
    if view["waits"]:
        lines.append("waiting on:")
        for item in view["waits"]:
            label = item["what"] + (f" {item['name']}" if item.get("name") else "")
            if item.get("reason"):
                label += f" ({item['reason']})"
            lines.append(f"  - {label}: {item['message']}")
    else:
        lines.append("waiting on: nothing")
    lines += _schedule_lines(view["schedules"], "")
    if view["targets"]:
        lines.append("targets:")
        cols = [("KIND", "kind"), ("NAME", "name"), ("FIELD", "field"), ("DESIRED", "desired")]
        cols += [("OBSERVED", "observed"), ("STATE", "state"), ("MESSAGE", "message")]
        lines += ["  " + row for row in render.table(cols, view["targets"]).splitlines()]
    return "\n".join(lines) + "\n"


def _schedule_lines(found: list[dict], indent: str) -> list[str]:
    lines = [f"{indent}schedules:"] if found else []
    for item in found:
        state = "open" if item["open"] else "closed"
        until = f" until {item['until']}" if item.get("until") else ""
        lines.append(f"{indent}  - {item['schedule']} (gate {item['gate']}): {state}{until}")
    return lines


def _get_rows(rollouts: list[dict], now: datetime) -> list[dict]:
    rows = []
    for r in rollouts:
        view = report.summary(r, now)
        bake = view["bake"]
        first = view["waits"][0] if view["waits"] else None
        rows.append(
            {
                "namespace": view["namespace"],
                "name": view["name"],
                "version": view["deployed"],
                "bake": bake.get("status"),
                "deadline": f"{bake['deadlineKind']} {bake['deadlineIn']}" if bake.get("deadline") else None,
                "ready": view["ready"].get("reason"),
                "waiting": f"{first['what']}: {first['message']}" if first else None,
                "verdict": view["verdict"],
            }
        )
    return rows


def _watch(args: argparse.Namespace, once: Callable[[], tuple[str, int]], out: TextIO) -> int:
    text, code = once()
    out.write(text)
    out.flush()
    if not getattr(args, "watch", False):
        return code
    rounds = 0
    try:
        while args.watch_rounds <= 0 or rounds < args.watch_rounds:
            time.sleep(WATCH_INTERVAL_S if args.watch_rounds <= 0 else 0)
            rounds += 1
            new, code = once()
            if new != text:
                if args.output == "table":
                    out.write(f"--- {format_time(clock())}\n")
                out.write(new)
                out.flush()
                text = new
    except KeyboardInterrupt:
        pass
    return code


def cmd_get(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kube = connect(args)

    def once() -> tuple[str, int]:
        rollouts = kube.list("Rollout", None if args.all_namespaces else kube.namespace)
        rollouts.sort(key=lambda r: (meta(r).get("namespace"), meta(r).get("name")))
        rows = _get_rows(rollouts, clock())
        code = max([report.verdict(r) for r in rollouts], default=errors.OK)
        if args.output != "table":
            return render.dump({"rollouts": rows}, args.output), code
        if not rows:
            where = "any namespace" if args.all_namespaces else f"namespace {kube.namespace}"
            return f"No Rollouts in {where}.\n", code
        cols = [("NAMESPACE", "namespace")] if args.all_namespaces else []
        cols += [("NAME", "name"), ("VERSION", "version"), ("BAKE", "bake"), ("DEADLINE", "deadline")]
        cols += [("READY", "ready"), ("WAITING", "waiting")]
        return render.table(cols, rows), code

    return _watch(args, once, out)


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kube = connect(args)

    def once() -> tuple[str, int]:
        rollout = _rollout(kube, args.name)
        gates = _gates(kube, str(meta(rollout).get("namespace")), err)
        view = report.summary(rollout, clock(), gates)
        code = report.verdict(rollout)
        return (_status_text(view) if args.output == "table" else render.dump(view, args.output)), code

    return _watch(args, once, out)


def cmd_history(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rollout = _rollout(connect(args), args.name)
    rows = report.history_rows(rollout, clock())
    if args.output != "table":
        out.write(render.dump({"history": rows}, args.output))
        return errors.OK
    if not rows:
        out.write("No deployments recorded yet.\n")
        return errors.OK
    for row in rows:
        notes = [f"rollback of #{row['rollbackOf']}" if "rollbackOf" in row else "", row.get("hold", "")]
        if row.get("failedHealthChecks"):
            notes.append("failed: " + ", ".join(row["failedHealthChecks"]))
        row["notes"] = "; ".join(n for n in notes if n)
    cols = [("ID", "id"), ("TAG", "tag"), ("WHEN", "when"), ("TRIGGER", "trigger"), ("BY", "by")]
    cols += [("MESSAGE", "message"), ("BAKE", "bake"), ("DURATION", "bakeDuration"), ("NOTES", "notes")]
    out.write(render.table(cols, rows))
    return errors.OK


BLOCKING_CODES = (
    "held",
    "gated",
    "unhealthy",
    "withdrawn",
    "not-verified-upstream",
    "unknown",
    "not-a-candidate",
)


def why_text(doc: dict) -> str:
    lines = [f"Rollout {doc['rollout']} at {doc['at']}: deployed {doc['deployed'] or '-'}"]
    if doc["wouldDeploy"]:
        lines.append(f"  the controller would deploy {doc['wouldDeploy']} now")
    if not doc["candidates"]:
        lines.append("  no release candidate: up to date")
    for line in doc["candidates"]:
        until = f"; {line['until']}" if line.get("until") else ""
        lines.append(f"  {line['tag']}: {line['reason']}{until}")
    waits = doc["summary"]["waits"]
    if waits:
        lines.append("waiting on:")
        for item in waits:
            label = item["what"] + (f" {item['name']}" if item.get("name") else "")
            lines.append(f"  - {label}: {item['message']}")
    lines += _schedule_lines(doc["summary"]["schedules"], "")
    if not doc["engineReasons"]:
        lines.append(f"note: {why.engine.NO_REASONS} (this engine predates Evaluation.explain)")
    return "\n".join(lines) + "\n"


def cmd_why(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kube = connect(args)
    rollout = _rollout(kube, args.name)
    doc = why.explain(why.request_for(kube, rollout), clock(), args.tag)
    out.write(why_text(doc) if args.output == "table" else render.dump(doc, args.output))
    code = int(doc["exitCode"])
    if args.tag is not None and doc["candidates"][0]["code"] in BLOCKING_CODES:
        code = max(code, errors.BLOCKED)
    return code


def cmd_action(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    kube = connect(args)
    rollout = _rollout(kube, args.name)
    namespace, name = str(meta(rollout).get("namespace")), str(meta(rollout).get("name"))
    planned = actions.plan(
        args.command,
        rollout,
        clock(),
        tag=getattr(args, "tag", None),
        message=getattr(args, "message", None),
        user=getattr(args, "user", None),
    )
    if planned.noop is not None:
        out.write(f"Rollout {namespace}/{name}: nothing to do, {planned.noop}\n")
        return errors.OK
    if args.command == "deploy":
        known = {report.tag_of(r) for r in (rollout.get("status") or {}).get("availableReleases") or []}
        if args.tag not in known:
            print(
                f"warning: {args.tag} is not a known release of {namespace}/{name}: the controller waits "
                "(Ready=False/ForceDeployVersionUnknown) until it is",
                file=err,
            )
    refusal = actions.flux_refusal(planned, rollout)
    if refusal is not None:
        print(f"warning: {refusal}", file=err)
        out.write("Make the change in Git instead, in the Rollout's manifest:\n")
        out.write("".join("  " + line + "\n" for line in actions.git_snippet(planned).splitlines()))
        if not args.force:
            out.write("Nothing sent (--force sends it anyway).\n")
            return errors.FAILURE
    elif not planned.spec_change and (note := actions.flux_note(planned, rollout)) is not None:
        print(note, file=err)
    if args.dry_run:
        out.write(f"PATCH {kube_path(namespace, name)} (application/json-patch+json)\n")
        out.write(json.dumps(planned.ops, indent=2) + "\n")
        out.write("dry run: nothing sent\n")
        return errors.OK
    kube.json_patch("Rollout", name, namespace, planned.ops)
    out.write(f"Rollout {namespace}/{name}: {planned.summary}\n")
    return errors.OK


def kube_path(namespace: str, name: str) -> str:
    return kinds.ROLLOUT.path(namespace, name)


def plan_text(doc: dict) -> str:
    lines = [f"Rollout {doc['rollout']} at {doc['at']}"]
    before, after = doc["deployedBefore"], doc["deployed"]
    moved = f"{before or '-'} -> {after}" if after != before else f"stays on {after or '-'}"
    lines.append(f"  decision: {doc['decision'] or '-'} ({moved}, settled after {doc['syncs']} syncs)")
    summary = doc["summary"]
    ready = summary["ready"]
    lines.append(f"  ready:    {ready.get('status')} {ready.get('reason')}: {ready.get('message')}")
    bake = summary["bake"]
    if bake.get("status"):
        lines.append(f"  bake:     {bake['status']} ({bake.get('message') or ''})")
    if bake.get("deadline"):
        lines.append(f"  deadline: {bake['deadlineKind']} at {bake['deadline']} ({bake['deadlineIn']})")
    for item in summary["waits"]:
        label = item["what"] + (f" {item['name']}" if item.get("name") else "")
        lines.append(f"  waits:    {label}: {item['message']}")
    for line in doc["candidates"]:
        until = f"; {line['until']}" if line.get("until") else ""
        lines.append(f"  candidate {line['tag']}: {line['reason']}{until}")
    lines += _schedule_lines(summary["schedules"], "  ")
    if doc["patches"]:
        lines.append("patches the controller sends once this decision is persisted:")
        for patch in doc["patches"]:
            lines.append(f"  PATCH {patch['path']}")
            lines.append(f"    {json.dumps(patch['ops'], separators=(',', ':'))}")
    else:
        lines.append("patches: none")
    return "\n".join(lines) + "\n"


def cmd_plan(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    at = clock()
    if args.at is not None:
        parsed = parse_time(args.at)
        if parsed is None:
            raise CliError(f"--at {args.at!r} is not an RFC 3339 time (e.g. 2026-12-01T09:30:00Z)")
        at = parsed
    doc = plan.as_data(plan.run(plan.load(args.filename, args.namespace), args.name, at), at)
    out.write(plan_text(doc) if args.output == "table" else render.dump(doc, args.output))
    return errors.OK


COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO, TextIO], int]] = {
    "get": cmd_get,
    "status": cmd_status,
    "history": cmd_history,
    "why": cmd_why,
    "plan": cmd_plan,
    **{verb: cmd_action for verb in ACTIONS},
}


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Parse and run one command; every failure is one line on `err` and exit code 1."""
    try:
        args = parser().parse_args(list(argv))
        return COMMANDS[args.command](args, out, err)
    except CliError as exc:
        print(f"error: {exc.message}", file=err)
        return exc.code
    except SystemExit as exc:  # --help, and argparse's own exits
        return int(exc.code or 0) if isinstance(exc.code, int) else errors.FAILURE
    except KeyboardInterrupt:
        return errors.FAILURE
    except BrokenPipeError:
        return errors.OK
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"error: unexpected {type(exc).__name__}: {exc} (please report this)", file=err)
        return errors.FAILURE


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
