"""Files: run folders (work beside, publish whole), atomic writes, manifests and versions."""
