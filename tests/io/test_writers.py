"""Writing files whole or not at all: :func:`crossentropy.io.atomic_write` and :func:`crossentropy.io.save_figure`."""

from __future__ import annotations

import os
import stat

import pytest

from crossentropy.io import atomic_write


def test_atomic_write_replaces_the_file_whole_and_keeps_its_mode(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    with atomic_write(target, "w") as handle:
        handle.write("new ")
        assert target.read_text() == "old"  # nothing is visible before the block ends
        handle.write("text é")
    assert target.read_text(encoding="utf-8") == "new text é"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_write_leaves_the_old_content_on_an_error(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def render() -> None:
        with atomic_write(target) as handle:
            handle.write(b"half")
            raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError, match="rendering failed"):
        render()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_follows_a_link_and_takes_binary_or_text_only(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_write(link, "w") as handle:
        handle.write("new")
    assert link.is_symlink()
    assert real.read_text() == "new"
    with pytest.raises(ValueError, match="mode must be"), atomic_write(real, "a"):
        pass


def test_save_figure_is_atomic_and_follows_the_suffix(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import os

    from matplotlib.figure import Figure

    from crossentropy.io import save_figure

    figure = Figure()
    figure.add_subplot().plot([0, 1], [1, 0])
    save_figure(figure, tmp_path / "a.svg")
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")
    (tmp_path / "b.png").write_bytes(b"old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_figure(figure, tmp_path / "b.png")
    assert (tmp_path / "b.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg", "b.png"]
    with pytest.raises(ValueError, match=r"cannot write a \.xyz figure"):
        save_figure(figure, tmp_path / "c.xyz")
