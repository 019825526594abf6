"""Operations decide: they return typed results and never print."""
