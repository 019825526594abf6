"""One ComponentResource per concern; `estate.Estate` composes them."""
