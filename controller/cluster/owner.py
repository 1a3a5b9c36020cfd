"""Whether a stopping pod takes the block with it: only when its release is going (docs/architecture.md,
decision 13).

A pod of the chart stops both when it is replaced (a rollout, a template change, `kubectl delete pod`, an
eviction) and when its release goes (`helm uninstall`, `kubectl delete daemonset`, a deleted namespace). With
--owner-daemonset, the stopping pod reads its own DaemonSet once, bounded, and removes the block only when
the release is going; otherwise its successor takes the block over. :func:`judge` is the rule on the answer,
:func:`ask` makes the request (controller/cluster/kube.py, imported only then: a preStop hook without the flag
loads no Kubernetes client).
"""

from __future__ import annotations

from dataclasses import dataclass

# Seconds for the one request at shutdown, connecting included: a preStop hook must not hang on a dead API
# server (the pod's grace period is 30 s by default, and SIGTERM's cleanup asks again).
ASK_TIMEOUT = 2.5


@dataclass(frozen=True)
class Decision:
    remove: bool
    reason: str  # one log line: what was seen, what is done
    seen: str = ""  # what was seen, alone


def daemonset_path(owner: str) -> str:
    namespace, _, name = owner.partition("/")
    return f"/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}"


def judge(owner: str, status: int, body: dict) -> Decision:
    """The rule on the API server's answer to GET of the DaemonSet OWNER (NAMESPACE/NAME)."""
    if status == 200:
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return _remove(f"the DaemonSet {owner} is being deleted")
        seen = f"the DaemonSet {owner} still exists"
        return Decision(False, f"{seen}: leaving the block to the next pod", seen)
    if status == 404:
        return _remove(f"the DaemonSet {owner} is gone")
    if status in (401, 403):
        # The chart's ServiceAccount and Role go in the same `helm uninstall`, right after the DaemonSet, so
        # by the time the pod stops they are often gone already; a replaced pod keeps them.
        word = "401 Unauthorized" if status == 401 else "403 Forbidden"
        return _remove(
            f"the API server refuses to show the DaemonSet {owner} ({word})",
            ": the release's ServiceAccount or Role is gone, so the release is being uninstalled",
        )
    return _cannot_tell(owner, f"the API server answered {status}")


def _remove(seen: str, because: str = "") -> Decision:
    return Decision(True, f"{seen}{because}: removing the block", seen)


def startup_warning(owner: str, decision: Decision) -> str | None:
    """What to say when the answer at start already means "remove": a wrong name or a missing `get` would make
    every stop of the pod, a replacement too, take the names away."""
    if not decision.remove:
        return None
    return (
        f"--owner-daemonset {owner}: at start, {decision.seen}; every stop of this pod, a replacement too, "
        f"would remove the block (check the name, and grant get on daemonsets/{owner.partition('/')[2]} in "
        f"{owner.partition('/')[0]})"
    )


def _cannot_tell(owner: str, why: str) -> Decision:
    # A replaced pod while the API server is away is far likelier than an uninstall then (deleting the release
    # needs the API server): keep the names working; the next pod takes the block over.
    seen = f"cannot tell whether the DaemonSet {owner} still exists ({why})"
    return Decision(
        False, f"{seen}: leaving the block to the next pod; k8s-hosts-controller --cleanup removes it", seen
    )


def ask(owner: str, configuration: object, timeout: float = ASK_TIMEOUT) -> Decision:
    """GET the DaemonSet OWNER once with CONFIGURATION's credentials and judge the answer; any failure to get
    one (refused, TLS, timeout) is "cannot tell"."""
    from controller.cluster import kube

    try:
        status, body = kube.get_once(configuration, daemonset_path(owner), timeout)  # type: ignore[arg-type]
    except Exception as err:  # the request's every failure means the same: no answer
        return _cannot_tell(owner, _short(err))
    return judge(owner, status, body)


def at_shutdown(owner: str, kubeconfig: str | None, context: str | None) -> Decision:
    """For --cleanup (a preStop hook): load the credentials, then :func:`ask`."""
    from controller.cluster import kube

    try:
        configuration = kube.load(kubeconfig, context)
    except kube.KubeconfigError as err:
        return _cannot_tell(owner, f"no credentials: {err}")
    return ask(owner, configuration)


def _short(err: Exception, limit: int = 200) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
