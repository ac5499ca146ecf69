/**
 * The walkthrough's MCP tools (stdio), one server per upstream:
 * `node tools.ts github` serves `get_user`, a stand-in for GitHub's GET /user
 * that shows which token arrived (masked) instead of calling GitHub;
 * `node tools.ts crm` serves `search_all_conversations`, a cross-user tool
 * Bastion hides from agents with `isolateUsers: true`.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const which = process.argv[2];
const server = new Server({ name: `demo-${which}`, version: '1.0.0' }, { capabilities: { tools: {} } });

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools:
    which === 'github'
      ? [{ name: 'get_user', description: 'The GitHub user a token belongs to.', inputSchema: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] } }]
      : [{ name: 'search_all_conversations', description: 'Search every user\'s conversations.', inputSchema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } }],
}));

server.setRequestHandler(CallToolRequestSchema, async (req) => {
  if (req.params.name === 'get_user') {
    const token = String(req.params.arguments?.token ?? '');
    // A real tool would call https://api.github.com/user with the token; this one reports what it got.
    const real = /^gh[pousr]_[A-Za-z0-9]{36}$/.test(token);
    const shown = real ? `${token.slice(0, 4)}…${token.slice(-4)}` : 'not a GitHub token';
    return { content: [{ type: 'text', text: JSON.stringify({ login: real ? 'octocat' : null, tokenReceived: shown }) }] };
  }
  return { content: [{ type: 'text', text: '[]' }] };
});

await server.connect(new StdioServerTransport());
