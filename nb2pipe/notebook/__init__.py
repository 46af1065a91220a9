"""Reading a notebook: the file, its IPython syntax, its tags, its split into steps."""
