"""What the console computes, free of any framework: rates, set-aside records, the case board, the
map's geometry and traces."""
