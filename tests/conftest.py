pytest_plugins = ["tests.fix_optional", "tests.fix_db", "tests.fix_legacy", "tests.fix_cluster", "tests.fix_redis",
                  "tests.fix_twin", "tests.fix_monitor", "tests.fix_backup", "tests.fix_s3", "tests.fix_tool_spy"]
