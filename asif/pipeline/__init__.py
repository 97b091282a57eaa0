"""The build pipeline: url lists and folders, download, embedding, validation, build."""
