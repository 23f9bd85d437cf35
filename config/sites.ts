/**
 * The default deployment's sites (tenants). Adding a site is a change here only:
 * nothing in the code names a site.
 */
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
  },
  {
    id: 'kawasaki',
    name: '川崎',
    offices: [{ id: 'main', name: '川崎事務所' }],
    recipients: [{ address: 'kawasaki-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
  },
  {
    id: 'kashima',
    name: '鹿島',
    offices: [{ id: 'main', name: '鹿島事務所' }],
    recipients: [{ address: 'kashima-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
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
  },
  {
    id: 'marifu',
    name: '麻里布',
    offices: [{ id: 'main', name: '麻里布事務所' }],
    recipients: [{ address: 'marifu-ops@example.com', active: true }],
    bcc: 'rowfleet-operators@example.com',
  },
];
