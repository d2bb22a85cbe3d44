"""cs3sync: CS3 storage as the file system of Jupyter, with a durable operation journal."""

__version__ = "0.1.0"
