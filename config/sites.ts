/**
 * The default deployment's sites (tenants). Adding a site is a change here only:
 * nothing in the code names a site.
 */

/**
 * An order notice for the `mail` processor, in the site's own name: one mail per row of an order export
 * (columns id, 氏名, 品目, 数量, 受注日 and the recipient's `email`, as `rowfleet loadtest --processor mail` writes).
 */
function orderNotice(siteName: string) {
  return {
    to: 'email',
    subject: `【${siteName}】ご注文 {{id}} のご案内`,
    text: `{{氏名}} 様\n\n${siteName}よりご注文 {{id}} のご案内です。\n品目: {{品目}}\n数量: {{数量}}\n受注日: {{受注日}}\n`,
    html: `<p>{{氏名}} 様</p><p>${siteName}よりご注文 {{id}} のご案内です。</p><table><tr><th>品目</th><td>{{品目}}</td></tr><tr><th>数量</th><td>{{数量}}</td></tr><tr><th>受注日</th><td>{{受注日}}</td></tr></table>`,
  };
}

export const sites = [
  {
    id: 'sakai',
    name: '堺',
    offices: [
      { id: 'main', name: '堺本社' },
      { id: 'port', name: '堺港事務所' },
    ],
    recipients: [
      { address: 'sakai-ops@example.com', active: true },
      { address: 'sakai-manager@example.com', active: true },
      { address: 'sakai-former@example.com', active: false },
    ],
    bcc: 'rowfleet-operators@example.com',
    bulkMail: { from: 'sakai@rowfleet.example.com', templates: { notice: orderNotice('堺') } },
  },
  {
    id: 'kawasaki',
    name: '川崎',
    offices: [{ id: 'main', name: '川崎事務所' }],
    recipients: [{ address: 'kawasaki-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
    bulkMail: { from: 'kawasaki@rowfleet.example.com', templates: { notice: orderNotice('川崎') } },
  },
  {
    id: 'kashima',
    name: '鹿島',
    offices: [{ id: 'main', name: '鹿島事務所' }],
    recipients: [{ address: 'kashima-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
    bulkMail: { from: 'kashima@rowfleet.example.com', templates: { notice: orderNotice('鹿島') } },
  },
  {
    id: 'mizushima',
    name: '水島',
    offices: [
      { id: 'main', name: '水島事務所' },
      { id: 'west', name: '水島西工場' },
    ],
    recipients: [{ address: 'mizushima-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
    bulkMail: { from: 'mizushima@rowfleet.example.com', templates: { notice: orderNotice('水島') } },
  },
  {
    id: 'marifu',
    name: '麻里布',
    offices: [{ id: 'main', name: '麻里布事務所' }],
    recipients: [{ address: 'marifu-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
    bulkMail: { from: 'marifu@rowfleet.example.com', templates: { notice: orderNotice('麻里布') } },
  },
];
