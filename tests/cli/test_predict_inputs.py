"""`tfxfer predict --file` reads a text file as `train` does; bad inputs get one clear line (issue 24)."""

import json

import pytest

from tfxfer.cli.main import main


@pytest.fixture(scope="module")
def text_model_file(dict_module, text_preprocessor_module, tmp_path_factory):
    from tfxfer import TransferModel

    model = TransferModel.from_hub(
        dict_module, num_classes=2, preprocessor=text_preprocessor_module, class_names=["neg", "pos"]
    )
    path = tmp_path_factory.mktemp("model") / "text.keras"
    model.save(path)
    return path


def _cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _inputs(out):
    return [json.loads(line)["input"] for line in out.strip().splitlines()]


def test_predict_file_reads_the_text_column_of_a_csv(text_model_file, tmp_path, capsys):
    csv = tmp_path / "reviews.csv"
    csv.write_text('text,label\ngood film,pos\n"bad, awful plot",neg\ngreat plot,pos\n')
    code, out, err = _cli(["predict", text_model_file, "--file", csv, "--json"], capsys)
    assert code == 0, err
    assert _inputs(out) == ["good film", "bad, awful plot", "great plot"]  # no header, no ",label" tails
    tsv = tmp_path / "messages.tsv"
    tsv.write_text("Label\tSMS\npos\tgood film\nneg\tbad plot\n")
    code, out, err = _cli(["predict", text_model_file, "--file", tsv, "--json"], capsys)
    assert code == 0 and _inputs(out) == ["good film", "bad plot"], err
    # The same column flags as train, and the same error when columns are unclear.
    odd = tmp_path / "odd.csv"
    odd.write_text("opinion,verdict\ngood film,yes\nbad plot,no\nfine film,yes\n")
    code, _, err = _cli(["predict", text_model_file, "--file", odd], capsys)
    assert code == 2 and "cannot tell which column holds the texts" in err and "--text-column" in err, err
    assert "text_column" not in err.replace("--text-column", "")
    code, out, err = _cli(["predict", text_model_file, "--file", odd, "--text-column", "opinion", "--json"], capsys)
    assert code == 0 and _inputs(out) == ["good film", "bad plot", "fine film"], err
    # Any other file is one input a line, as before.
    lines = tmp_path / "lines.txt"
    lines.write_text("good film\n\nbad plot, really\n")
    code, out, err = _cli(["predict", text_model_file, "--file", lines, "--json"], capsys)
    assert code == 0 and _inputs(out) == ["good film", "bad plot, really"], err


def test_predict_file_with_bad_bytes_names_the_file_line_and_flag(text_model_file, tmp_path, capsys):
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("text,label\ngood film,pos\ncaf\u00e9 film,neg\n".encode("latin-1"))
    code, out, err = _cli(["predict", text_model_file, "--file", latin1], capsys)
    assert code == 2 and out == "", err
    first = err.strip().splitlines()[0]
    assert f"{latin1}:3: not valid UTF-8" in first and "--encoding-errors replace" in first, err
    assert "codec can't decode" not in err and "Traceback" not in err
    code, out, err = _cli(
        ["predict", text_model_file, "--file", latin1, "--encoding-errors", "replace", "--json"], capsys
    )
    assert code == 0 and _inputs(out) == ["good film", "caf\ufffd film"], err
    code, out, err = _cli(["predict", text_model_file, "--file", latin1, "--on-bad-data", "skip", "--json"], capsys)
    assert code == 0 and _inputs(out) == ["good film"] and f"skipped {latin1}:3: not valid UTF-8" in err, err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["good film", ""], "input 2 is empty"),
        (["--file", ""], "--file is empty"),
    ],
)
def test_predict_refuses_an_empty_argument(text_model_file, capsys, argv, expected):
    code, out, err = _cli(["predict", text_model_file, *argv], capsys)
    assert code == 2 and expected in err and "is a folder" not in err and out == "", err


def test_predict_refuses_an_empty_export_argument(capsys):
    code, _, err = _cli(["predict", "", "good film"], capsys)
    assert code == 2 and "EXPORT is empty" in err and "is a folder" not in err, err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["info", ""], "TARGET is empty"),
        (["export", ""], "TARGET is empty"),
        (["evaluate", "saved_models/x", "--data", ""], "--data is empty"),
        (["evaluate", "saved_models/x", "--data="], "--data is empty"),
    ],
)
def test_every_command_refuses_an_empty_argument(capsys, argv, expected):
    code, out, err = _cli(argv, capsys)
    assert code == 2 and expected in err and "is a folder" not in err and out == "", err


def test_predict_file_reads_labelled_lines_and_tsv_as_train_does(text_model_file, tmp_path, capsys):
    labelled = tmp_path / "labelled.txt"  # the model's classes are neg, pos
    labelled.write_text("neg good film\npos bad film\n")
    code, out, err = _cli(["predict", text_model_file, "--file", labelled, "--json"], capsys)
    assert code == 0 and _inputs(out) == ["good film", "bad film"] and "--data-format lines" in err, err
    code, out, _ = _cli(["predict", text_model_file, "--file", labelled, "--data-format", "lines", "--json"], capsys)
    assert code == 0 and _inputs(out) == ["neg good film", "pos bad film"]
    sms = tmp_path / "SMSSpamCollection"
    sms.write_text("Label\tSMS\nham\tsee you at noon\nspam\tWIN a prize now\n")
    code, out, err = _cli(["predict", text_model_file, "--file", sms, "--json"], capsys)
    assert code == 0 and _inputs(out) == ["see you at noon", "WIN a prize now"], err
    plain = tmp_path / "plain.txt"
    plain.write_text("3 reasons to watch\nfine\n")
    code, out, err = _cli(["predict", text_model_file, "--file", plain, "--json"], capsys)
    assert code == 0 and _inputs(out) == ["3 reasons to watch", "fine"] and "read as" not in err, err


def test_predict_file_refuses_semicolons_and_header_only_files(text_model_file, tmp_path, capsys):
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("text;label\ngreat;pos\ndull;neg\n")
    code, out, err = _cli(["predict", text_model_file, "--file", str(semicolons)], capsys)
    assert code == 2 and "separated by semicolons" in err and out == "", err
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    code, out, err = _cli(["predict", text_model_file, "--file", str(header_only)], capsys)
    assert code == 2 and "has a header row" in err and "no rows after it" in err, err


@pytest.fixture
def image_model_file(image_module, tmp_path):
    from tfxfer import TransferModel

    model = TransferModel.from_hub(image_module, num_classes=2, input_shape=(10, 10, 3), class_names=["a", "b"])
    path = tmp_path / "image.keras"
    model.save(path)
    return path


def test_export_flags_are_named_in_the_clis_words(image_model_file, tmp_path, capsys):
    code, _, err = _cli(["export", image_model_file, "--export-dir", tmp_path / "ex", "--name", ".."], capsys)
    assert code == 2 and "--name must be a plain name" in err and not (tmp_path / "1").exists(), err
    code, _, err = _cli(
        ["export", image_model_file, "--export-dir", tmp_path / "ex", "--class-names", "x", "y"], capsys
    )
    assert code == 2 and "--class-names ['x', 'y'] differ" in err and "leave --class-names out" in err, err
