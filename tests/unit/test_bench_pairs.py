"""The benchmark harness reads any implementation's block: address/host lines, whatever sits between."""

from __future__ import annotations

from bench.workload import USER_CONTENT, pairs

EXPECTED = {("10.0.0.1", "a.bench.test"), ("10.0.0.2", "b.bench.test"), ("fd00::3", "c.bench.test")}


def test_our_block():
    content = USER_CONTENT + (
        b"#### BEGIN TYK-K8S-HOSTS ####\n"
        b"10.0.0.1 a.bench.test  # ns/a\n"
        b"10.0.0.2 b.bench.test  # ns/b\n"
        b"fd00::3 c.bench.test  # ns/c\n"
        b"#### END TYK-K8S-HOSTS ####\n"
    )
    assert pairs(content) == EXPECTED


def test_tab_separated_lines_with_comment_and_blank_lines_between():
    content = USER_CONTENT + (
        b"\n# BEGIN k8s-hosts-controller\r\n"
        b"# Ingress: ns/a\r\n"
        b"10.0.0.1\ta.bench.test\r\n"
        b"\r\n"
        b"# Ingress: ns/b\r\n"
        b"10.0.0.2\t b.bench.test\r\n"
        b"   # Ingress: ns/c\r\n"
        b"fd00::3\tc.bench.test\r\n"
        b"# END k8s-hosts-controller\r\n"
        b"10.9.9.9 after.bench.test\n"
    )
    assert pairs(content) == EXPECTED  # nothing from outside the block: not localhost, not the line after


def test_several_names_on_one_line_and_no_markers_at_all():
    content = b"10.0.0.1 a.bench.test\n10.0.0.2\tb.bench.test B.bench.test # x\n# 10.0.0.3 commented.test\n"
    assert pairs(content) == {
        ("10.0.0.1", "a.bench.test"),
        ("10.0.0.2", "b.bench.test"),
    }


def test_an_empty_block_maps_nothing():
    assert pairs(USER_CONTENT + b"# BEGIN X\n# END X\n") == set()
