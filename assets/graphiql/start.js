// Starts GraphiQL on /graphql (served by wechat-identity; no external URL). An `edit` URL
// parameter fills the editor. Send an API key from the Headers tab:
// {"Authorization": "Bearer <key>"}.
(function () {
  var params = new URLSearchParams(window.location.search);
  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  var props = { fetcher: fetcher, defaultEditorToolsVisibility: true };
  if (params.get('edit')) {
    props.query = params.get('edit');
  }
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, props),
  );
})();
