"""Reading progress.jsonl records in tests: `<split>_<metric>` (train, test or validation)."""


def progress_value(record: dict, metric: str, split: str = "test"):
    key = f"{split}_{metric}"
    if key not in record:
        raise KeyError(f"{key} not in the progress record: {sorted(record)}")
    return record[key]
