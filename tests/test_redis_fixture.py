def test_fixture_server_is_real_and_flushed(redis_db):
    assert redis_db.dbsize() == 0
    redis_db.xadd("probe", {"a": "1"})
    assert redis_db.xlen("probe") == 1
    assert redis_db.info("server")["redis_version"].startswith("6.")
