"""Forward-looking numbers, each with its measured accuracy: payment dates, the walk-forward backtest,
the weekly cash forecast."""
