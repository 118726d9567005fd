// Starts GraphiQL on /graphql (served by wechat-identity; no external URL). An `edit` URL
// parameter fills the editor. Send an API key from the Headers tab:
// {"Authorization": "Bearer <key>"}.
(function () {
  // What a first visit shows (GraphiQL keeps the tabs in localStorage after that): where the
  // API key goes, and a query that needs one. The headers stay empty: a placeholder key in
  // them would be sent with every request and refuse even the anonymous ones (the logins).
  var defaultQuery = [
    '# Welcome to wechat-identity.',
    '#',
    '# Admin and service fields need an API key, sent as the header',
    '#   Authorization: Bearer <key>',
    '# Paste this into the Headers tab below (opened for you), with your key:',
    '#   {"Authorization": "Bearer <admin or service API key>"}',
    '# (`WECHAT_IDENTITY_ADMIN_KEY=<24+ characters> cargo run` registers an admin key.)',
    '# A user\'s access token goes in the same header (for `{ me { id } }`).',
    '#',
    '# Then run this query (the run button, or Ctrl-Enter): the WeChat apps this',
    '# service logs people into (admin or service key).',
    '',
    '{',
    '  wechatApps {',
    '    appId',
    '    kind',
    '    name',
    '  }',
    '}',
    '',
  ].join('\n');
  var params = new URLSearchParams(window.location.search);
  var fetcher = GraphiQL.createFetcher({ url: '/graphql' });
  var props = {
    fetcher: fetcher,
    defaultQuery: defaultQuery,
    defaultEditorToolsVisibility: 'headers',
  };
  if (params.get('edit')) {
    props.query = params.get('edit');
  }
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, props),
  );
})();
