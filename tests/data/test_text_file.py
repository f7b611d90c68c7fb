import numpy as np
import pytest

from tests.conftest import shared_path
from tfxfer.data import DataError, from_text_file


def _labels(dataset):
    return [int(v) for _, y in dataset for v in y.numpy()]


def test_label_text_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("1 a fine film\n0 a dull film\n\n1 great fun\n0 boring\n")
    data = from_text_file(path, batch_size=2)
    assert data.class_names == ["0", "1"] and data.train_size == 4
    texts = sorted(t.decode() for x, _ in data.train for t in x.numpy())
    assert texts == ["a dull film", "a fine film", "boring", "great fun"]


def test_csv_with_named_columns_and_joined_text(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text(
        'label,title,body\nsport,"Win, again",Team wins\nworld,Talks,"Leaders, meet"\nsport,Loss,Team loses\n'
    )
    data = from_text_file(path, text_column=["title", "body"], label_column="label")
    assert data.class_names == ["sport", "world"]
    texts = sorted(t.decode() for x, _ in data.train for t in x.numpy())
    assert texts == ["Loss Team loses", "Talks Leaders, meet", "Win, again Team wins"]


def test_bad_lines_are_named_or_counted(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"1 fine\n0 dull\nlonely\n1 caf\xe9 au lait\n7 out of range\n0 ok\n")
    # Bytes are checked first, then lines are parsed: line 4 stops it.
    with pytest.raises(DataError, match=r"bad.txt:4: not valid UTF-8 \(byte 0xe9 at column 6"):
        from_text_file(path)
    data = from_text_file(path, on_bad_data="skip", class_names=["neg", "pos"])
    reasons = dict(data.report.skipped)
    assert reasons[f"{path}:3"] == "missing text after the label"
    assert reasons[f"{path}:4"].startswith("not valid UTF-8 (byte 0xe9")
    assert reasons[f"{path}:5"] == "label 7 out of range: 2 classes numbered from 0"
    assert data.train_size == 3
    replaced = from_text_file(path, on_bad_data="skip", class_names=["neg", "pos"], encoding_errors="replace")
    assert replaced.train_size == 4


def test_unknown_label_name_and_single_class(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("ham\thello\nspam\twin now\nhma\ttypo\n")
    with pytest.raises(DataError, match=r"x.tsv:3: label 'hma' is not one of the declared classes"):
        from_text_file(path, class_names=["ham", "spam"])
    one = tmp_path / "one.txt"
    one.write_text("1 a\n1 b\n")
    with pytest.raises(DataError, match="hold 1 class"):
        from_text_file(one)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(DataError, match="empty.txt is empty"):
        from_text_file(empty)
    with pytest.raises(FileNotFoundError, match="Text file not found"):
        from_text_file(tmp_path / "missing.txt")


def test_validation_file_shares_the_class_mapping(tmp_path):
    (tmp_path / "train.txt").write_text("0 a\n1 b\n2 c\n")
    (tmp_path / "dev.txt").write_text("2 d\n0 e\n")
    data = from_text_file(tmp_path / "train.txt", validation_path=tmp_path / "dev.txt")
    assert data.class_names == ["0", "1", "2"]
    assert sorted(_labels(data.validation)) == [0, 2]


@pytest.mark.real
@pytest.mark.parametrize(
    "parts, options, classes, count",
    [
        (("sst2", "stsa.binary.train"), {}, ["0", "1"], 6920),
        (("sst5", "stsa.fine.train"), {}, ["0", "1", "2", "3", "4"], 8544),
        (("trec", "TREC.train.all"), {"encoding_errors": "replace"}, ["0", "1", "2", "3", "4", "5"], 5452),
        (("sms_spam", "SMSSpamCollection"), {"text_column": "SMS", "label_column": "Label"}, ["ham", "spam"], 5574),
    ],
)
def test_real_text_datasets(parts, options, classes, count):
    data = from_text_file(shared_path("data", "text", *parts), **options)
    assert data.class_names == classes
    assert data.train_size == count
    assert data.report.skipped == []


@pytest.mark.real
def test_sms_spam_counts_and_ag_news_classes():
    sms = from_text_file(shared_path("data", "text", "sms_spam", "SMSSpamCollection"))
    assert sum(_labels(sms.train)) == 747  # spam, as DATA.md says
    names = open(shared_path("data", "text", "ag_news", "classes.txt")).read().split()
    ag = from_text_file(
        shared_path("data", "text", "ag_news", "test.csv"),
        text_column=[1, 2],
        label_column=0,
        class_names=["World", "Sports", "Business", "Sci/Tech"],
        label_base=1,
        validation_split=0.2,
    )
    assert names[0] == "World"
    assert (ag.train_size, ag.validation_size) == (6080, 1520)
    assert np.bincount(_labels(ag.validation)).tolist() == [380, 380, 380, 380]


def test_loaded_text_trains_a_transfer_model(tmp_path, dict_module, text_preprocessor_module):
    from tfxfer import TransferModel

    path = tmp_path / "reviews.txt"
    path.write_text("1 good film\n1 great plot\n0 bad film\n0 awful plot\n" * 4)
    data = from_text_file(path, batch_size=4, validation_split=0.25)
    model = TransferModel.from_hub(dict_module, num_classes=data.num_classes, preprocessor=text_preprocessor_module)
    history = model.fit(data.train, validation_data=data.validation, epochs=2, verbose=0)
    assert len(history.history["val_accuracy"]) == 2


def _texts(dataset):
    return sorted(t.decode() for x, _ in dataset for t in x.numpy())


@pytest.mark.parametrize(
    "name, header, row",
    [
        ("c.csv", "text,label", "{text},{label}"),
        ("c.csv", "Label,Review", "{label},{text}"),
        ("c.tsv", "sentence\tSENTIMENT", "{text}\t{label}"),
        ("c.csv", "id,category,content", "7,{label},{text}"),
        ("c.tsv", "document\tclass", "{text}\t{label}"),
    ],
)
def test_a_header_naming_the_columns_picks_them(tmp_path, name, header, row):
    # Issue 24: `text,label` was read as label = column 0: 33 reviews became 33 classes.
    path = tmp_path / name
    lines = [row.format(text=f"review {i} was {'fine' if i % 2 else 'dull'}", label="pos" if i % 2 else "neg")
             for i in range(33)]  # fmt: skip
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    data = from_text_file(path, validation_split=0.2)
    assert data.class_names == ["neg", "pos"]
    assert (data.train_size, data.validation_size) == (27, 6)
    assert "review 1 was fine" in _texts(data.train) + _texts(data.validation)


def test_a_header_naming_no_known_columns_needs_the_column_flags(tmp_path):
    path = tmp_path / "opinions.csv"
    path.write_text("opinion,verdict\n" + "".join(f"film {i},{'yes' if i % 2 else 'no'}\n" for i in range(6)))
    with pytest.raises(DataError) as caught:
        from_text_file(path)
    message, cli = str(caught.value), caught.value.cli_message
    assert "['opinion', 'verdict']" in message and "text_column" in message and "label_column" in message
    assert "--text-column" in cli and "--label-column" in cli and "text_column" not in cli
    data = from_text_file(path, text_column="opinion", label_column="verdict")
    assert data.class_names == ["no", "yes"] and data.train_size == 6
    # One column named is enough when the other is the only one left.
    assert from_text_file(path, label_column=1).class_names == ["no", "yes"]


def test_headerless_text_then_label_is_an_error_not_one_class_per_text(tmp_path):
    path = tmp_path / "swapped.csv"
    path.write_text("".join(f"film number {i},{i % 2}\n" for i in range(10)))
    with pytest.raises(DataError, match=r"text_column.*label_column"):
        from_text_file(path)
    data = from_text_file(path, text_column=0, label_column=1, header=False)
    assert data.class_names == ["0", "1"] and data.train_size == 10


def test_ag_news_layout_class_title_description(tmp_path):
    # A header with one label column and two text columns: which text is meant is asked, not guessed.
    path = tmp_path / "news.csv"
    path.write_text(
        '"class","title","description"\n"1","Talks","Leaders meet"\n"2","Win","Team wins"\n"1","Vote","Polls open"\n'
    )
    with pytest.raises(DataError, match=r"several text columns \['title', 'description'\].*text_column") as caught:
        from_text_file(path)
    assert "--text-column title,description" in caught.value.cli_message
    data = from_text_file(path, text_column=["title", "description"])
    assert data.class_names == ["1", "2"]
    assert _texts(data.train) == ["Talks Leaders meet", "Vote Polls open", "Win Team wins"]
    # Headerless, as AG News ships: three columns and no names is an error too.
    bare = tmp_path / "bare.csv"
    bare.write_text('"1","Talks","Leaders meet"\n"2","Win","Team wins"\n"1","Vote","Polls open"\n')
    with pytest.raises(DataError, match=r"3 column\(s\) and no header"):
        from_text_file(bare)


def test_a_validation_split_that_holds_out_nothing_is_an_error(tmp_path):
    path = tmp_path / "one_each.txt"
    path.write_text("a first\nb second\nc third\n")
    with pytest.raises(
        DataError, match=r"validation_split=0.2 holds out no examples.*'a': 1, 'b': 1, 'c': 1"
    ) as caught:
        from_text_file(path, validation_split=0.2)
    assert "--validation-split 0.2" in caught.value.cli_message
    assert from_text_file(path).validation is None  # no split asked: none made, no error


def test_a_byte_order_mark_is_no_part_of_a_label_or_column_name(tmp_path):
    sst = tmp_path / "sst_bom.txt"
    sst.write_text("1 a gripping film\n0 dull and slow\n1 a joy\n0 a mess\n", encoding="utf-8-sig")
    assert from_text_file(sst).class_names == ["0", "1"]
    csv_file = tmp_path / "bom.csv"
    csv_file.write_text("text,label\ngreat,pos\nawful,neg\nfine,pos\n", encoding="utf-8-sig")
    assert from_text_file(csv_file, text_column="text").class_names == ["neg", "pos"]


def test_named_columns_match_padded_or_capitalised_header_cells(tmp_path):
    path = tmp_path / "padded.csv"
    path.write_text(" Text , LABEL \ngreat,pos\nawful,neg\nfine,pos\n")
    data = from_text_file(path, text_column="text", label_column="label")
    assert data.class_names == ["neg", "pos"] and data.train_size == 3


def test_a_semicolon_separated_csv_is_named_and_texts_with_semicolons_are_not(tmp_path):
    semicolons = tmp_path / "semi.csv"
    semicolons.write_text("text;label\ngreat;pos\ndull;neg\nfine;pos\n")
    with pytest.raises(DataError, match="separated by semicolons"):
        from_text_file(semicolons)
    semicolons.write_text("label;text\npos;great, really\nneg;dull\npos;fine, fine, fine\n")  # commas in texts
    with pytest.raises(DataError, match="separated by semicolons"):
        from_text_file(semicolons)
    from tfxfer.data.text_file import read_texts

    prose = tmp_path / "prose.csv"
    prose.write_text("great; loved it\nno\nfine; fine\n")
    assert [text for _, text in read_texts(prose)[0]] == ["great; loved it", "no", "fine; fine"]


def test_an_unclosed_quote_is_named_not_merged_into_one_example(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('text,label\ngood,pos\n"unterminated,pos\nbad,neg\nfine,pos\n')
    with pytest.raises(DataError, match=r"quote.csv:3: not valid CSV.*closing quote"):
        from_text_file(path)


def test_an_unquoted_comma_in_a_text_is_a_row_problem_not_a_new_class(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["great,pos", "awful,neg", "fine,pos", "funny, sharp and moving,pos", "dull,neg", "trailing,neg,"]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"reviews.csv:5: has 3 fields but the header has 2.*quoted"):
        from_text_file(path)
    data = from_text_file(path, on_bad_data="skip")
    assert data.class_names == ["neg", "pos"] and data.train_size == 5  # the trailing comma is no field
    assert [where for where, _ in data.report.skipped] == [f"{path}:5"]


def test_a_column_index_past_the_last_column_names_the_option(tmp_path):
    path = tmp_path / "three.csv"
    path.write_text("a,b,c\nx,y,z\nu,v,w\n")
    with pytest.raises(DataError, match=r"text_column 5 is no column: the first row has 3"):
        from_text_file(path, text_column=5, label_column=0)


def test_a_tab_separated_csv_is_named_with_the_format_to_pass(tmp_path):
    path = tmp_path / "tabs.csv"
    path.write_text("text\tlabel\nhello\tpos\nbye\tneg\nhi\tpos\n")
    with pytest.raises(DataError, match=r"looks separated by tabs.*format='tsv'"):
        from_text_file(path)
    assert from_text_file(path, format="tsv").class_names == ["neg", "pos"]
    path.write_text("text\tlabel\nhello, you\tpos\nbye\tneg\nhi, hi\tpos\n")  # commas in texts
    with pytest.raises(DataError, match=r"looks separated by tabs.*format='tsv'"):
        from_text_file(path)
    with pytest.raises(DataError, match=r"looks separated by tabs.*format='tsv'"):
        from_text_file(path, text_column="text", label_column="label")  # names cannot be found there either


def test_whole_number_labels_written_as_floats_are_the_same_class(tmp_path):
    path = tmp_path / "spreadsheet.csv"
    path.write_text("text,label\ngreat,1\nawful,0\nfine,1.0\nbad,0.0\n")
    data = from_text_file(path)
    assert data.class_names == ["0", "1"] and data.train_size == 4


def test_a_headerless_first_row_whose_class_appears_once_is_data(tmp_path):
    path = tmp_path / "news.csv"  # as AG News' first rows: class 3 only in row 1
    path.write_text('"3","Fears for pension","Unions say"\n"4","Space race","A second team"\n"1","Vote","Polls"\n'
                    '"4","Rocket","Launch date"\n"1","Talks","Summit"\n')  # fmt: skip
    data = from_text_file(path, text_column=[1, 2], label_column=0)
    assert data.class_names == ["1", "3", "4"] and data.train_size == 5


def test_the_same_column_as_text_and_label_is_refused(tmp_path):
    path = tmp_path / "ok.csv"
    path.write_text("text,label\ngreat,pos\nawful,neg\nfine,pos\n")
    with pytest.raises(DataError, match="text_column and label_column name the same column"):
        from_text_file(path, text_column="label", label_column="label")


def test_a_first_row_guessed_to_be_a_header_is_noted(tmp_path):
    from tfxfer.data.data_report import DataNote

    path = tmp_path / "labels.csv"
    path.write_text("neu,ok film\npos,great\nneg,awful\npos,fine\nneg,bad\n")
    with pytest.warns(DataNote, match=r"first row \['neu', 'ok film'\] was read as a header.*header=False"):
        data = from_text_file(path, text_column=1, label_column=0)
    assert data.train_size == 4 and len(data.report.notes) == 1
    assert "--class-names" in data.report.notes[0].cli_message
    assert from_text_file(path, text_column=1, label_column=0, header=False).train_size == 5


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(header="yes"), "header must be 'auto', True or False, got 'yes'"),
        (dict(label_column=True), "label_column must be a header name or a 0-based column index, got True"),
        (dict(text_column=[]), "text_column is an empty list"),
        (dict(text_column=1.5), r"text_column must be a header name or a 0-based column index \(or a list"),
    ],
)
def test_column_arguments_of_the_wrong_kind_are_named(tmp_path, options, message):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngreat,pos\ndull,neg\n")
    with pytest.raises(ValueError, match=message):
        from_text_file(path, **options)
