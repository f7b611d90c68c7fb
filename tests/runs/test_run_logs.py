"""Issue 24, item 14: a redirected `--verbose 2` log is plain lines, each epoch headed `Epoch i/N`."""

import re

from tfxfer.runs import TrainConfig, train_run


def test_a_two_phase_log_heads_every_epoch_and_has_no_progress_bars(image_module, image_folder, tmp_path, capsys):
    config = TrainConfig(
        backbone=image_module, data=str(image_folder), image_size=(10, 10), augment="none", epochs=1,
        head_epochs=1, batch_size=8, runs_dir=str(tmp_path / "runs"), export=False,
    )  # fmt: skip
    metrics = train_run(config, verbose=2)
    out = capsys.readouterr().out
    assert metrics["cached_features"] is not None  # the head phase ran on cached features
    assert "\x1b[" not in out and "\r" not in out and "\b" not in out, repr(out[:2000])
    lines = out.splitlines()
    epoch_lines = [i for i, line in enumerate(lines) if re.match(r"^\d+/\d+ - \d+s - .*loss", line)]
    assert len(epoch_lines) == 2, out
    for number, index in enumerate(epoch_lines, start=1):
        assert lines[index - 1] == f"Epoch {number}/2", out
