"""Reports built from the dashboards' own figures: the monthly pack a CFO puts in front of the board.

Modules:
- `monthly_pack`: `monthly_pack` (the `Pack`: every table, from the same KPI functions the pages call),
  who may have it (`may_have_pack`), the cash forecast hook.
- `pack_files`: the pack as a PDF (`pack_pdf`, charts by `pack_charts`) and as a workbook (`pack_xlsx`).
- `pack_charts`: the PDF's charts, for print (matplotlib, Agg; none when matplotlib is missing).
- `pack_sends`: the scheduled send (`[pack] send_on_day`, `recipients`), once per month and recipient,
  through the outreach queue.
"""
