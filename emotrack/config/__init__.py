"""Run configs: the typed schema of every section and key, the named experiments of the papers' tables, run folders' configs."""
