// SearchView: to be built (issue 18).
export function SearchView() {
  return <div class="todo">SearchView</div>;
}
