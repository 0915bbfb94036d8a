// AdminView: to be built (issue 18).
export function AdminView() {
  return <div class="todo">AdminView</div>;
}
