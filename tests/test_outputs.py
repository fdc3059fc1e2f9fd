"""No data loss through output paths: a command never replaces its input, a run store, an image
or a PyTorch file (without --force), never writes under a missing folder, and says why in one line.

Every refusal is checked at the CLI: exit code 2, one line on stderr, and the files that were
there are byte-for-byte unchanged (nothing else appears)."""
import errno
import hashlib
import sqlite3

import pytest
import torch
from PIL import Image

from foolkit.runtime import files
from foolkit.cli import error_line, main
from foolkit.evaluation.universal_io import save_universal
from conftest import run_cli

torch.set_num_threads(1)


def snapshot(folder):
    """name -> sha256 of every file under ``folder``: any change, addition or removal shows."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv, capsys, folder, *words):
    """Run ``argv``; assert exit 2, one stderr line holding ``words``, ``folder`` unchanged."""
    before = snapshot(folder)
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (argv, out, err)
    assert len(err) == 1 and err[0].startswith(f"foolkit {argv[0]}: error:"), err
    for w in words:
        assert w in err[0], (w, err[0])
    assert "Traceback" not in out + err[0] and "[Errno" not in err[0]
    assert snapshot(folder) == before, argv
    return err[0]


@pytest.fixture(scope="module")
def weights(random_resnet20_weights):
    return random_resnet20_weights


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory, weights):
    """A finished run store (4 images, FGSM, random weights), as bytes to copy per test."""
    db = tmp_path_factory.mktemp("s") / "s.db"
    assert main(["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "4",
                 "--out", str(db), "--quiet"]) == 0
    assert not (db.parent / "s.db-wal").exists()  # closed cleanly: the main file holds everything
    return db.read_bytes()


@pytest.fixture
def work(tmp_path, store_bytes):
    """tmp_path with S.db (a run store), other.db (another store), photo.png (a user's image)."""
    (tmp_path / "S.db").write_bytes(store_bytes)
    (tmp_path / "other.db").write_bytes(store_bytes)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(tmp_path / "photo.png")
    Image.new("RGB", (8, 8), (10, 200, 10)).save(tmp_path / "photo.jpg")
    return tmp_path


# --- 1. inputs, run stores, images, PyTorch files ------------------------------------------
def test_report_never_replaces_its_store_another_store_or_an_image(work, capsys):
    s = str(work / "S.db")
    refused(["report", s, "-o", s], capsys, work, "is also an input")
    refused(["report", s, "-o", str(work / "other.db")], capsys, work, "other.db", "SQLite", "--force")
    refused(["report", s, "-o", str(work / "photo.png")], capsys, work, "photo.png", "an image", "--force")
    refused(["report", s, "-o", str(work / "photo.jpg")], capsys, work, "an image")


def test_report_replaces_an_earlier_report_and_force_replaces_an_image(work, capsys):
    s = str(work / "S.db")
    (work / "old.html").write_text("<html>an earlier report</html>")
    code, _, err = run_cli(["report", s, "-o", str(work / "old.html")], capsys)
    assert code == 0 and not err and "an earlier report" not in (work / "old.html").read_text()
    code, _, _ = run_cli(["report", s, "-o", str(work / "photo.png"), "--force"], capsys)
    assert code == 0 and (work / "photo.png").read_bytes().lstrip().startswith(b"<!")
    code, _, err = run_cli(["report", s, "-o", s, "--force"], capsys)  # an input: not even with --force
    assert code == 2 and "is also an input" in err[0]


def test_demo_report_onto_its_own_store_is_refused_before_any_work(work, capsys):
    s = str(work / "S.db")
    refused(["demo", "--out", s, "--report", s, "--n", "1", "--quiet"], capsys, work, "is also an input")
    refused(["demo", "--out", s, "--report", str(work / "other.db"), "--n", "1", "--quiet"], capsys, work, "SQLite")
    # the store does not exist yet: the same name for both is still refused, and nothing is created
    new = str(work / "new.db")
    refused(["demo", "--out", new, "--report", new, "--n", "1", "--quiet"], capsys, work, "is also an input")
    # a store path that is an image: refused up front, not after the clean-accuracy pass
    refused(["demo", "--out", str(work / "photo.png"), "--n", "1", "--quiet"], capsys, work, "not an SQLite")


def test_fit_universal_never_replaces_a_store_an_image_or_weights(work, weights, capsys):
    w = work / "weights.pt"
    w.write_bytes(open(weights, "rb").read())
    base = ["fit-universal", "--model", "cifar10/resnet20", "--n", "2", "--max-passes", "1"]
    refused(base + ["--out", str(work / "S.db")], capsys, work, "SQLite", "--force")
    refused(base + ["--out", str(work / "photo.png")], capsys, work, "an image")
    refused(base + ["--out", str(w)], capsys, work, "PyTorch file")
    refused(base + ["--checkpoint", str(w), "--out", str(w)], capsys, work, "is also an input")


def test_a_perturbation_may_replace_a_perturbation(tmp_path):
    v = tmp_path / "v.pt"
    save_universal(v, torch.zeros(1, 3, 4, 4), model="cifar10/resnet20", norm="inf", xi=0.1)
    assert files.check_output(v, kind="perturbation") == v
    with pytest.raises(ValueError, match="PyTorch file"):  # but a report does not replace it
        files.check_output(v, kind="report")


def test_attack_one_image_refuses_a_users_image_but_replaces_its_own_png(tmp_path, weights, capsys):
    fig = tmp_path / "fig.png"
    base = ["attack", "--cifar-index", "0", "--attack", "fgsm", "--checkpoint", weights, "--out", str(fig)]
    Image.new("RGB", (8, 8)).save(fig)
    refused(base, capsys, tmp_path, "fig.png", "an image", "--force")
    fig.unlink()
    Image.new("RGB", (8, 8)).save(tmp_path / "fig-adv.png")  # the adversarial PNG's name
    line = refused(base, capsys, tmp_path, "fig-adv.png", "an image")
    assert "with an image (" in line  # the article agrees with the kind ("a image" before)
    (tmp_path / "fig-adv.png").unlink()
    code, _, err = run_cli(base, capsys)
    assert code == 0, err
    first = snapshot(tmp_path)
    assert files.is_foolkit_png(fig) and files.is_foolkit_png(tmp_path / "fig-adv.png")
    code, _, err = run_cli(base, capsys)  # a rerun replaces foolkit's own PNGs
    assert code == 0, err
    assert set(snapshot(tmp_path)) == set(first)
    Image.new("RGB", (8, 8)).save(fig)
    code, _, err = run_cli(base + ["--force"], capsys)
    assert code == 0 and files.is_foolkit_png(fig)


def test_attack_store_is_not_an_image(work, weights, capsys):
    refused(["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "2",
             "--out", str(work / "photo.png"), "--quiet"], capsys, work, "not an SQLite database")


def test_train_folder_must_not_be_a_file_or_overwrite_its_init_weights(tmp_path, weights, capsys):
    out = tmp_path / "t"
    out.mkdir()
    (out / "weights.pt").write_bytes(open(weights, "rb").read())
    refused(["train", "cifar10/resnet20", "--data", str(tmp_path), "--out", str(out), "--init-from",
             str(out / "weights.pt")], capsys, tmp_path, "is an input", "weights.pt")
    (tmp_path / "afile").write_text("x")
    refused(["train", "cifar10/resnet20", "--data", str(tmp_path), "--out", str(tmp_path / "afile")], capsys,
            tmp_path, "is a file")


# --- 2. missing folders, unwritable places ------------------------------------------------
def test_missing_folders_are_named_not_created(work, weights, capsys):
    s = str(work / "S.db")
    for argv in (
        ["report", s, "-o", str(work / "out" / "x.html")],
        ["fit-universal", "--model", "cifar10/resnet20", "--n", "2", "--out", str(work / "out" / "v.pt")],
        ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "2",
         "--out", str(work / "out" / "r.db"), "--quiet"],
        ["attack", "--cifar-index", "0", "--attack", "fgsm", "--checkpoint", weights, "--out",
         str(work / "out" / "f.png")],
        ["demo", "--out", s, "--report", str(work / "out" / "d.html"), "--n", "1", "--quiet"],
        ["train", "cifar10/resnet20", "--data", str(work), "--out", str(work / "out" / "t")],
        ["reproduce", "--quick", "--out", str(work / "out" / "thesis")],
    ):
        line = refused(argv, capsys, work, f"folder {work / 'out'} does not exist")
        assert not (work / "out").exists(), (argv, line)


def test_raw_os_errors_become_one_clear_line(work, capsys, monkeypatch):
    assert error_line(OSError(errno.EROFS, "Read-only file system", "x")) == "x: read-only file system"
    assert error_line(PermissionError(errno.EACCES, "Permission denied", "a", None, "b")) == "a -> b: permission denied"
    assert error_line(OSError(errno.ENOSPC, "No space left on device")) == "no space left on device"

    # Tests run as root, where chmod does not stop a write: fake a read-only file system at
    # the one place atomic_path touches the folder first. This proves the message and the
    # clean-up, not that SQLite or the OS behave this way.
    real_open = files.Path.open

    def read_only(self, mode="r", *args, **kwargs):
        if "w" in mode and self.name.endswith(".tmp"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(files.Path, "open", read_only)
    refused(["report", str(work / "S.db"), "-o", str(work / "r.html")], capsys, work,
            f"cannot write {work / 'r.html'}: read-only file system")


@pytest.mark.skipif(not files.Path("/proc/self").exists(), reason="needs Linux /proc")
def test_a_folder_that_refuses_new_files_is_named_before_the_work(tmp_path, weights, capsys):
    """os.access says yes to root everywhere, yet /proc takes no new files: the fit (or the
    single-image attack) must be refused before it runs, not after."""
    code, out, err = run_cli(["fit-universal", "--model", "cifar10/resnet20", "--checkpoint", weights, "--n", "2",
                              "--max-passes", "1", "--out", "/proc/v.pt"], capsys)
    # as root: "does not accept new files"; as another user os.access already says no
    reasons = ("/proc does not accept new files", "no write permission in /proc")
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("foolkit fit-universal: error: cannot write /proc/v.pt: ") and any(
        r in err[0] for r in reasons), err
    assert "pass 1" not in out and not out.strip()  # refused before fitting
    code, out, err = run_cli(["attack", "--cifar-index", "0", "--attack", "fgsm", "--checkpoint", weights,
                              "--out", "/proc/f.png"], capsys)
    assert code == 2 and len(err) == 1 and any(r in err[0] for r in reasons), err
    assert "L2:" not in out


# --- 3. corrupt stores ------------------------------------------------------------------
def multi_line_corruption(path):
    """Corrupt a copy of the store at ``path`` so that PRAGMA quick_check reports a problem over
    more than one line (SQLite's "*** in database main ***\\nOn tree page ..."); the schema
    still reads. Returns True when such a corruption was found."""
    clean = path.read_bytes()
    page = int.from_bytes(clean[16:18], "big")
    for start in range(page, len(clean), page):
        for offset in (8, 100):
            data = bytearray(clean)
            data[start + offset:start + offset + 4] = b"\xde\xad\xbe\xef"
            path.write_bytes(bytes(data))
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
            try:
                if con.execute("SELECT value FROM foolkit_meta WHERE key = 'schema'").fetchall() != [("1",)]:
                    continue
                check = con.execute("PRAGMA quick_check(1)").fetchone()[0]
            except sqlite3.DatabaseError:
                continue
            finally:
                con.close()
            if "\n" in check:
                return True
    path.write_bytes(clean)
    return False


def test_corrupt_store_message_is_whole_and_no_sidecar_files(work, weights, capsys):
    s = work / "S.db"
    assert multi_line_corruption(s)
    for argv in (["show", str(s)], ["report", str(s), "-o", str(work / "r.html")],
                 ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "2",
                  "--out", str(s), "--quiet"]):
        line = refused(argv, capsys, work, "is corrupt (", "On tree page", "); nothing was written to it")
        assert line.endswith("nothing was written to it")
    assert not (work / "S.db-wal").exists() and not (work / "S.db-shm").exists()


# --- 4. finished stores on read-only media ---------------------------------------------------
def test_reading_a_finished_store_writes_nothing(work, capsys):
    """show and report open a finished store (no -wal file beside it) with immutable=1: no
    -wal/-shm files, no lock, no change, so read-only media work. As root we cannot make a
    folder truly read-only; what this proves is that reading creates and changes nothing,
    which is what a read-only folder requires."""
    before = snapshot(work)
    code, out, _ = run_cli(["show", str(work / "S.db")], capsys)
    assert code == 0 and "fgsm" in out
    code, _, _ = run_cli(["report", str(work / "S.db"), "-o", str(work / "r.html")], capsys)
    assert code == 0
    after = snapshot(work)
    assert after.pop("r.html") and after == before  # only the report appeared


# --- 5. a universal perturbation has no targeted mode: refused before any store -------------
@pytest.mark.parametrize("attack", ["universal", "sparsefool"])
def test_untargetable_attack_with_target_leaves_no_store(tmp_path, weights, capsys, attack):
    db = tmp_path / "u.db"
    refused(["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", attack, "--target", "3",
             "--n", "4", "--out", str(db), "--quiet"], capsys, tmp_path, "has no targeted mode")
    assert not db.exists() and not list(tmp_path.iterdir())


def test_attack_one_image_never_overwrites_its_input(work, weights, capsys):
    base = ["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm"]
    photo = str(work / "photo.png")
    refused(base + ["--image", photo, "--out", photo], capsys, work, "is also an input")
    # the adversarial PNG's name (<out>-adv.png) is the input: refused too, even with --force
    (work / "x-adv.png").write_bytes((work / "photo.png").read_bytes())
    refused(base + ["--image", str(work / "x-adv.png"), "--out", str(work / "x.png"), "--force"], capsys, work,
            "is also an input")


# --- 6. symlinks: a loop is named, a store reached through a symlink reads back whole ---------
def test_symlink_loops_are_named_and_a_symlinked_store_reads_its_wal(work, weights, capsys):
    (work / "loopA").symlink_to(work / "loopB")
    (work / "loopB").symlink_to(work / "loopA")
    loop = str(work / "loopA")
    refused(["show", loop], capsys, work, "run store", "is a symlink loop")
    refused(["report", loop, "-o", str(work / "r.html")], capsys, work, "is a symlink loop")  # was a traceback
    refused(["report", str(work / "S.db"), "-o", loop], capsys, work, f"cannot write {loop}: it is a symlink loop")
    refused(["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm", "--n", "2",
             "--out", loop, "--quiet"], capsys, work, "is a symlink loop")
    refused(["eval", "cifar10/resnet20", "--checkpoint", loop], capsys, work, "checkpoint", "is a symlink loop")
    # SQLite names the -wal file after the symlink's target: the read-back at the end of the run
    # must find it there (it used to read the target's main file alone: "an empty database")
    (work / "link.db").symlink_to(work / "target.db")
    code, out, err = run_cli(["attack", "--model", "cifar10/resnet20", "--checkpoint", weights, "--attack", "fgsm",
                              "--n", "2", "--out", str(work / "link.db"), "--quiet"], capsys)
    assert code == 0 and not err and "(2 samples)" in out, (out, err)
    assert (work / "target.db").stat().st_size > 0
