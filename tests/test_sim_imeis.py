import pytest

from teltonika.sim.imeis import is_valid_imei, luhn_digit, make_imeis, read_imeis


def test_luhn_digit_of_known_imeis():
    assert luhn_digit("49015420323751") == "8"
    assert luhn_digit("35209308145225") == "1"


def test_made_imeis_are_distinct_valid_and_prefixed():
    imeis = make_imeis(10_000, "3520930")
    assert len(set(imeis)) == 10_000
    assert all(is_valid_imei(i) and i.startswith("3520930") for i in imeis)


@pytest.mark.parametrize(
    ("count", "prefix", "message"),
    [
        (1, "35a", "0 to 13 digits"),
        (1, "12345678901234", "0 to 13 digits"),
        (11, "1234567890123", "room for 10 IMEIs"),
    ],
)
def test_bad_prefixes(count, prefix, message):
    with pytest.raises(ValueError, match=message):
        make_imeis(count, prefix)


@pytest.mark.parametrize(
    "imei", ["352093081452252", "35209308145225", "3520930814522510", "35209308145225a"]
)
def test_invalid_imeis(imei):
    assert not is_valid_imei(imei)


def test_read_imeis_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "imeis.txt"
    path.write_text("# fleet\n352093081452251\n\n490154203237518  # spare\n")
    assert read_imeis(str(path)) == ["352093081452251", "490154203237518"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("352093081452251\n352093081452252\n", ":2: not a valid IMEI"),
        ("352093081452251\n352093081452251\n", ":2: IMEI 352093081452251 repeated"),
        ("# nothing\n", "no IMEIs"),
    ],
)
def test_read_imeis_rejects(tmp_path, text, message):
    path = tmp_path / "imeis.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_imeis(str(path))
