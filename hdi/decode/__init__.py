"""Decode: DBN records into typed Polars frames (``hdi.decode.dbn``) and the symbol mapping
(``hdi.decode.symbols``). Nothing is imported here so that ``import hdi`` stays cheap."""
