"""The Python client (client/python) against a real shrink-coordinator and shrink-worker."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import shrink_client

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.environ.get("SHRINK_BIN_DIR", os.path.join(REPO_ROOT, "build", "bin"))
READY_TIMEOUT_S = 60.0


def read_ready_line(process: subprocess.Popen, prefix: str) -> tuple[str | None, str]:
    """Reads stdout up to a line starting with `prefix`: (that line, or None if the process exits first; all read)."""
    fd = process.stdout.fileno()
    printed = b""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        for line in printed.split(b"\n")[:-1]:  # whole lines only: the port may still be on its way
            if line.startswith(prefix.encode()):
                return line.decode(), printed.decode(errors="replace")
        readable, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        data = os.read(fd, 4096) if readable else b""
        if not data:
            return None, printed.decode(errors="replace")
        printed += data


def start_process(argv: list[str], ready_prefix: str, log_path: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """Starts `argv` and waits for its ready line; returns the process and the line's key=value fields."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    ready, printed = read_ready_line(process, ready_prefix)
    if ready is None:
        process.kill()
        process.wait()
        with open(log_path, encoding="utf-8", errors="replace") as f:
            raise AssertionError(f"{argv[0]} printed no '{ready_prefix}' line (exit {process.returncode}); "
                                 f"stdout:\n{printed}\nstderr:\n{f.read()}")
    # Keep reading stdout so a chatty process never blocks on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, dict(part.split("=", 1) for part in ready.split() if "=" in part)


def stop_process(process: subprocess.Popen) -> None:
    """Stops a process this test started: SIGTERM, then SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ClientTest(unittest.TestCase):
    """One real job: a tiny trained CNN compressed on fashion-mnist by one worker."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.mkdtemp(prefix="shrink-python-client-")
        cls.processes: list[subprocess.Popen] = []
        try:
            cls.start_cluster()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_cluster(cls) -> None:
        cls.model_dir = os.path.join(cls.dir, "model")
        trained = subprocess.run([os.path.join(BIN_DIR, "shrink"), "train", "--arch", "cnn", "--data", "fashion-mnist",
                                  "--out", cls.model_dir, "--epochs", "1", "--max-examples", "3000", "--threads", "1"],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        if trained.returncode != 0:
            raise AssertionError(f"shrink train exited {trained.returncode}:\n{trained.stderr}")
        coordinator, ready = start_process(
            [os.path.join(BIN_DIR, "shrink-coordinator"), "--listen", "127.0.0.1:0", "--state",
             os.path.join(cls.dir, "state"), "--sync", "normal"],
            "shrink-coordinator ready", os.path.join(cls.dir, "coordinator.log"))
        cls.processes.append(coordinator)
        cls.address = ready["grpc"]
        worker, _ = start_process(
            [os.path.join(BIN_DIR, "shrink-worker"), "--coordinator", cls.address, "--slots", "1", "--threads", "1",
             "--cache", os.path.join(cls.dir, "worker-cache")],
            "shrink-worker ready", os.path.join(cls.dir, "worker.log"))
        cls.processes.append(worker)
        cls.client = shrink_client.Client(cls.address)
        cls.submitted = cls.client.submit(cls.model_dir, "fashion-mnist", target_size=0.5, min_retention=0.5,
                                          budget=2, search="uniform", seed=7, request_id="python-client-test")
        cls.progress: list[shrink_client.Progress] = []
        cls.job = cls.client.watch(cls.submitted.id, cls.progress.append)

    @classmethod
    def tearDownClass(cls) -> None:
        if hasattr(cls, "client"):
            cls.client.close()
        for process in reversed(cls.processes):
            stop_process(process)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def artifact(self) -> dict[str, shrink_client.FileRef]:
        return {file.name: file for file in self.job.artifact_files}

    def assert_fetched(self, out_dir: str) -> None:
        """out_dir holds exactly the artifact's files, each with its sha256, and no ".part" file."""
        self.assertEqual(sorted(os.listdir(out_dir)), sorted(self.artifact()))
        for name, file in self.artifact().items():
            self.assertEqual(shrink_client.sha256_file(os.path.join(out_dir, name)), file.sha256, name)

    def test_submit_uploads_the_model_and_task_and_is_idempotent(self) -> None:
        spec = self.submitted.spec
        self.assertEqual([f.name for f in spec.model_files], ["config.json", "model.safetensors"])
        self.assertEqual(spec.model_files[0].origin, os.path.join(self.model_dir, "config.json"))
        self.assertEqual(len(spec.task.data_files), 4)
        self.assertEqual(spec.runtime, "libtorch")  # the default, stored
        again = self.client.submit(self.model_dir, "fashion-mnist", target_size=0.5, min_retention=0.5,
                                   budget=2, search="uniform", seed=7, request_id="python-client-test")
        self.assertEqual(again.id, self.submitted.id)

    def test_watch_reports_progress_until_the_job_ends(self) -> None:
        self.assertEqual(self.job.state, shrink_client.JobState.Value("SUCCEEDED"), self.job.error)
        self.assertEqual(self.job.evaluated, 2)
        self.assertGreaterEqual(len(self.progress), 2)  # the snapshot at once, then changes
        self.assertEqual(self.progress[-1].job.state, self.job.state)
        evaluated = [p.job.evaluated for p in self.progress]
        self.assertEqual(evaluated, sorted(evaluated))
        reported = [p.candidate.id for p in self.progress if p.candidate is not None]
        self.assertEqual(len(reported), len(set(reported)))  # each candidate once
        listed = self.client.candidates(self.job.id)
        self.assertEqual(len(listed), 2)
        self.assertLessEqual(set(reported), {c.id for c in listed})
        self.assertEqual(self.client.get(self.job.id).state, self.job.state)

    def test_fetch_writes_every_file_with_its_sha256(self) -> None:
        out_dir = os.path.join(self.dir, "fetched")
        paths = self.client.fetch(self.job.id, out_dir)
        self.assertIn("model.onnx", self.artifact())
        self.assertEqual(paths, [os.path.join(out_dir, f.name) for f in self.job.artifact_files])
        self.assert_fetched(out_dir)

    def interrupted_fetch(self, name: str, zeros: bool = False) -> str:
        """A folder as a fetch killed halfway through the file `name` leaves it (its first half, or zeros)."""
        complete = os.path.join(self.dir, "complete")
        if not os.path.isdir(complete):
            self.client.fetch(self.job.id, complete)
        out_dir = tempfile.mkdtemp(dir=self.dir)
        for file in self.job.artifact_files:  # the files before it are in place, the ones after not yet
            if file.name == name:
                break
            shutil.copy(os.path.join(complete, file.name), out_dir)
        with open(os.path.join(complete, name), "rb") as f:
            half = f.read(self.artifact()[name].size // 2)
        with open(os.path.join(out_dir, name + ".part"), "wb") as f:
            f.write(b"\0" * len(half) if zeros else half)
        return out_dir

    def test_fetch_resumes_an_interrupted_transfer(self) -> None:
        out_dir = self.interrupted_fetch("model.onnx")
        self.client.fetch(self.job.id, out_dir)
        self.assert_fetched(out_dir)

    def test_fetch_resumes_at_the_partial_size_and_drops_a_bad_partial_file(self) -> None:
        # Wrong bytes before the offset: only a resumed transfer (not a restarted one) fails the digest.
        out_dir = self.interrupted_fetch("model.onnx", zeros=True)
        with self.assertRaises(shrink_client.ShrinkError) as caught:
            self.client.fetch(self.job.id, out_dir)
        self.assertEqual(caught.exception.code, grpc.StatusCode.DATA_LOSS)
        self.assertIn("model.onnx", caught.exception.message)
        self.assertIn("fetch again", caught.exception.message)  # it was a resumed transfer
        self.assertFalse(os.path.exists(os.path.join(out_dir, "model.onnx")))  # never a half-written file
        self.assertFalse(os.path.exists(os.path.join(out_dir, "model.onnx.part")))
        self.client.fetch(self.job.id, out_dir)  # starts model.onnx afresh
        self.assert_fetched(out_dir)

    def test_bad_requests_raise_with_the_status_code(self) -> None:
        with self.assertRaises(shrink_client.ShrinkError) as caught:
            self.client.submit(self.model_dir, "fashion-mnist", budget=0)
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("spec.budget", caught.exception.message)
        with self.assertRaises(shrink_client.ShrinkError) as caught:
            self.client.submit(self.model_dir, "fashion-mnist", runtime="tensorrt")
        self.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("spec.runtime", caught.exception.message)
        with self.assertRaises(shrink_client.ShrinkError) as caught:
            self.client.get("job-that-does-not-exist")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(shrink_client.ShrinkError) as caught:
            self.client.submit(os.path.join(self.dir, "no-model"), "fashion-mnist")
        self.assertEqual(caught.exception.code, grpc.StatusCode.NOT_FOUND)


if __name__ == "__main__":
    unittest.main()
