// ChannelView: to be built (issue 18).
export function ChannelView() {
  return <div class="todo">ChannelView</div>;
}
